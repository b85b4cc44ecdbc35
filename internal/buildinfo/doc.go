// SPDX-License-Identifier: GPL-3.0-or-later

// Package buildinfo holds the version entropy-gate and entropy-notify
// were built as. `make build` stamps it with the linker's -X flag: `git
// describe` in a clone, the VERSION file in a release tarball. A `go
// install …@version` build reports the module's version instead.
package buildinfo
