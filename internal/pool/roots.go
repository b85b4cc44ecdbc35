// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"os"
	"path/filepath"
	"strings"
)

// Roots locates the kernel's file systems, so that tests can point them at
// fixture trees: the one injectable root of every reader of /proc, /sys
// and /dev (the pool, the seeders, the doctor). An empty field means the
// real one.
type Roots struct {
	Proc, Sys, Dev string
}

func rootPath(root, def string, elem []string) string {
	if root == "" {
		root = def
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// ProcPath joins elem under the proc root.
func (r Roots) ProcPath(elem ...string) string { return rootPath(r.Proc, "/proc", elem) }

// SysPath joins elem under the sysfs root.
func (r Roots) SysPath(elem ...string) string { return rootPath(r.Sys, "/sys", elem) }

// DevPath joins elem under the device root.
func (r Roots) DevPath(elem ...string) string { return rootPath(r.Dev, "/dev", elem) }

// BootID reads the kernel's random boot id, different at every boot.
func (r Roots) BootID() ([]byte, error) {
	return os.ReadFile(r.ProcPath("sys/kernel/random/boot_id"))
}

// KernelRelease is the running kernel's release (uname -r), or "" if
// unknown.
func (r Roots) KernelRelease() string {
	b, err := os.ReadFile(r.ProcPath("sys/kernel/osrelease"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
