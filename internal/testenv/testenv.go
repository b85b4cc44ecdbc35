// SPDX-License-Identifier: GPL-3.0-or-later

package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// InstallCommand installs every Debian package the tests use.
const InstallCommand = "sudo make deps"

// debianPackages maps each host command the tests or the lab run to the
// Debian package that ships it on Debian 12; .ci/test-deps lists them all.
var debianPackages = map[string]string{
	"qemu-system-x86_64":    "qemu-system-x86",
	"cpio":                  "cpio",
	"sgdisk":                "gdisk",
	"mkfs.vfat":             "dosfstools",
	"mcopy":                 "mtools",
	"mlabel":                "mtools",
	"xz":                    "xz-utils",
	"zstd":                  "zstd",
	"debootstrap":           "debootstrap",
	"losetup":               "mount",
	"mkfs.ext4":             "e2fsprogs",
	"make":                  "make",
	"msgfmt":                "gettext",
	"plymouthd":             "plymouth",
	"dbus-daemon":           "dbus-daemon",
	"Xvfb":                  "xvfb",
	"dunst":                 "dunst",
	"dunstctl":              "dunst",
	"import":                "imagemagick",
	"convert":               "imagemagick",
	"desktop-file-validate": "desktop-file-utils",
	"systemd-analyze":       "systemd",
	"gnome-shell":           "gnome-shell",
	"mksquashfs":            "squashfs-tools",
	"depmod":                "kmod",
	"chroot":                "coreutils",
	"xorriso":               "xorriso",
	"go-md2man":             "go-md2man",
	"dpkg-buildpackage":     "dpkg-dev",
	"dh":                    "debhelper",
	"pkg-config":            "pkgconf",
	"dpkg-deb":              "dpkg",
	"lintian":               "lintian",
	"gjs":                   "gjs",
	"dbus-run-session":      "dbus-daemon",
}

// ErrMissing is wrapped by the error of Missing.
var ErrMissing = errors.New("missing host commands")

// LookCommand finds a command in PATH or in the sbin folders, which are
// not in an ordinary user's PATH but hold sgdisk, losetup and mkfs.*.
func LookCommand(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %s not found", name)
}

// Missing returns nil when every command is installed, or an error, one
// line, naming the missing commands, their Debian packages and the
// command that installs them.
func Missing(commands ...string) error {
	var missing []string
	for _, name := range commands {
		if _, err := LookCommand(name); err != nil {
			missing = append(missing, describe(name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: needs %s: run `%s`", ErrMissing, strings.Join(missing, ", "), InstallCommand)
}

// describe names a command and, when known, its Debian package.
func describe(command string) string {
	if pkg, ok := debianPackages[command]; ok {
		return fmt.Sprintf("%s (Debian package %s)", command, pkg)
	}
	return command
}

// NeedCommands skips tb unless every command is installed.
func NeedCommands(tb testing.TB, commands ...string) {
	tb.Helper()
	if err := Missing(commands...); err != nil {
		tb.Skip(err)
	}
}
