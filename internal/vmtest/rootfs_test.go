// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnescapeMountPoint(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "/run/live/medium", want: "/run/live/medium"},
		{name: "blank", in: `/mnt/a\040b`, want: "/mnt/a b"},
		{name: "backslash", in: `/mnt/a\134b`, want: `/mnt/a\b`},
		{name: "not an escape", in: `/mnt/a\9`, want: `/mnt/a\9`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unescapeMountPoint(tt.in); got != tt.want {
				t.Errorf("unescapeMountPoint(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRemoveScratchDetachesMounts leaves a mount in a scratch folder, as a
// killed debootstrap leaves /proc: removeScratch must detach it and then
// delete the folder, never files through the mount.
func TestRemoveScratchDetachesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	scratch := filepath.Join(t.TempDir(), scratchPrefix+"test")
	mountPoint := filepath.Join(scratch, "root", "my proc")
	if err := os.MkdirAll(mountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mountPoint, "tmpfs", 0, ""); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mountPoint, "kept"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The mounted file system stays reachable through this handle after
	// it is detached: its file shows whether anything deleted through it.
	mounted, err := os.Open(mountPoint)
	if err != nil {
		t.Fatal(err)
	}
	defer mounted.Close()
	if err := removeScratch(scratch); err != nil {
		unix.Unmount(mountPoint, unix.MNT_DETACH)
		t.Fatal(err)
	}
	if err := unix.Faccessat(int(mounted.Fd()), "kept", unix.F_OK, 0); err != nil {
		t.Errorf("a file inside the mount was deleted: %v", err)
	}
	if _, err := os.Stat(scratch); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scratch folder still there: %v", err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), filepath.Base(scratch)) {
		t.Error("the mount below the scratch folder is still mounted")
	}
}
