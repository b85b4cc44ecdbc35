// SPDX-License-Identifier: GPL-3.0-or-later

package buildinfo

import "runtime/debug"

// version is set by the linker: -X <this package>.version=v0.1.0.
var version string

// Version returns the version the binary was built as: the stamped one,
// else the main module's version that the go command recorded, else
// "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
