// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeMounts is a mount table with one mount, for unit tests on a plain
// directory. It records every remount and can refuse them.
type fakeMounts struct {
	medium       Medium
	mediumErr    error
	rwErr, roErr error
	// onRemount runs at each remount, before it takes effect.
	onRemount func(readOnly bool)
	remounts  []string // "rw" or "ro", in order
	// device is what Device returns; deviceAsked says it was called.
	device      string
	deviceAsked bool
}

// readOnlyMount is a writable medium mounted read-only, as Tails mounts
// its boot medium.
func readOnlyMount() *fakeMounts { return &fakeMounts{medium: Medium{MountedReadOnly: true}} }

func (f *fakeMounts) Medium(dir string) (Medium, error) {
	if f.mediumErr != nil {
		return Medium{}, f.mediumErr
	}
	m := f.medium
	m.MountPoint = dir
	return m, nil
}

// Device is device, if set: writes go through the file system otherwise.
func (f *fakeMounts) Device(Medium) (string, error) {
	f.deviceAsked = true
	if f.device == "" {
		return "", errors.New("a fake mount table has no devices")
	}
	return f.device, nil
}

func (f *fakeMounts) Remount(_ string, readOnly bool) error {
	err, mode := f.rwErr, "rw"
	if readOnly {
		err, mode = f.roErr, "ro"
	}
	f.remounts = append(f.remounts, mode)
	if f.onRemount != nil {
		f.onRemount(readOnly)
	}
	if err != nil {
		return err
	}
	f.medium.MountedReadOnly = readOnly
	return nil
}

func (f *fakeMounts) calls() string { return strings.Join(f.remounts, ",") }

// withWritable on every way in and out: the mount ends read-only whenever
// it started so, the write runs only while it is writable, and a refused
// remount is tried once.
func TestWithWritable(t *testing.T) {
	errWrite := errors.New("write failed")
	tests := []struct {
		name      string
		mounts    *fakeMounts
		writeErr  error
		panics    bool
		wantCalls string
		wantWrite bool
		wantRO    bool
		wantErr   []error
	}{
		{name: "write succeeds", mounts: readOnlyMount(), wantCalls: "rw,ro", wantWrite: true, wantRO: true},
		{name: "write fails", mounts: readOnlyMount(), writeErr: errWrite, wantCalls: "rw,ro", wantWrite: true, wantRO: true, wantErr: []error{errWrite}},
		{name: "write panics", mounts: readOnlyMount(), panics: true, wantCalls: "rw,ro", wantWrite: true, wantRO: true},
		{name: "remount refused: read-only device", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true}, rwErr: unix.EACCES},
			wantCalls: "rw,ro", wantRO: true, wantErr: []error{ErrReadOnly, unix.EACCES}},
		{name: "remount refused: read-only file system", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true}, rwErr: unix.EROFS},
			wantCalls: "rw,ro", wantRO: true, wantErr: []error{ErrReadOnly, unix.EROFS}},
		{name: "remount refused: no privilege", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true}, rwErr: unix.EPERM},
			wantCalls: "rw,ro", wantRO: true, wantErr: []error{ErrReadOnly, unix.EPERM}},
		{name: "remount fails otherwise", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true}, rwErr: unix.EIO},
			wantCalls: "rw,ro", wantRO: true, wantErr: []error{unix.EIO}},
		{name: "read-only remount fails", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true}, roErr: unix.EBUSY},
			wantCalls: "rw,ro", wantWrite: true, wantErr: []error{unix.EBUSY}},
		{name: "unwritable medium: no remount", mounts: &fakeMounts{medium: Medium{MountedReadOnly: true, Unwritable: "iso9660 file system"}},
			wantRO: true, wantErr: []error{ErrReadOnly}},
		{name: "mounted read-write: left so", mounts: &fakeMounts{}, wantWrite: true},
		{name: "no medium", mounts: &fakeMounts{mediumErr: ErrNoBootMedium}, wantErr: []error{ErrNoBootMedium}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrote := false
			write := func() error {
				if tt.mounts.medium.MountedReadOnly {
					t.Error("write ran while the medium was mounted read-only")
				}
				wrote = true
				if tt.panics {
					panic("write panicked")
				}
				return tt.writeErr
			}
			var err error
			func() {
				defer func() {
					if p := recover(); (p != nil) != tt.panics {
						t.Fatalf("panic %v, want one: %t", p, tt.panics)
					}
				}()
				err = withWritable(tt.mounts, t.TempDir(), write)
			}()
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			if got := tt.mounts.calls(); got != tt.wantCalls {
				t.Errorf("remounts %q, want %q", got, tt.wantCalls)
			}
			if wrote != tt.wantWrite {
				t.Errorf("write ran: %t, want %t", wrote, tt.wantWrite)
			}
			if tt.mounts.mediumErr == nil && tt.mounts.medium.MountedReadOnly != tt.wantRO {
				t.Errorf("mounted read-only afterwards: %t, want %t", tt.mounts.medium.MountedReadOnly, tt.wantRO)
			}
		})
	}
}

// A second writer on the same medium fails at once and touches nothing.
func TestWithWritableBusy(t *testing.T) {
	dir := t.TempDir()
	holder, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	m := readOnlyMount()
	err = withWritable(m, dir, func() error {
		t.Error("write ran while another writer held the medium")
		return nil
	})
	if !errors.Is(err, ErrMediumBusy) || m.calls() != "" {
		t.Fatalf("err = %v, remounts %q; want ErrMediumBusy and no remount", err, m.calls())
	}
	unix.Flock(int(holder.Fd()), unix.LOCK_UN)
	if err := withWritable(m, dir, func() error { return nil }); err != nil {
		t.Fatalf("after the other writer let go: %v", err)
	}
}

// mountOptions reads the per-mount and file-system options of the mount at
// dir from /proc/self/mountinfo, split plainly on blanks (dir has none),
// independently of the parser under test.
func mountOptions(t *testing.T, dir string) (mount, super []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != dir {
			continue
		}
		sep := slices.Index(f[6:], "-") + 6
		mount, super, found = strings.Split(f[5], ","), strings.Split(f[sep+3], ","), true
	}
	if !found {
		t.Fatalf("%s is not in /proc/self/mountinfo", dir)
	}
	return mount, super
}

// assertMountedReadOnly fails unless the mount at dir and its file system
// are both read-only, and the mount still has the flags it had.
func assertMountedReadOnly(t *testing.T, dir string, keep ...string) {
	t.Helper()
	mount, super := mountOptions(t, dir)
	if !slices.Contains(mount, "ro") || !slices.Contains(super, "ro") {
		t.Fatalf("%s is mounted %v (file system %v), want read-only", dir, mount, super)
	}
	for _, k := range keep {
		if !slices.Contains(mount, k) {
			t.Fatalf("%s lost the mount flag %s: %v", dir, k, mount)
		}
	}
}

// SystemMounts against the real kernel: a remount switches read-only and
// read-write and keeps nosuid, nodev, noexec and noatime, which a bare
// MS_REMOUNT would drop.
func TestSystemMountsRemountKeepsFlags(t *testing.T) {
	flags := []string{"nosuid", "nodev", "noexec", "noatime"}
	dir := mountTemp(t, "tmpfs", append([]string{"size=1m"}, flags...)...)
	m := SystemMounts{}
	for _, ro := range []bool{true, false, true} {
		if err := m.Remount(dir, ro); err != nil {
			t.Fatal(err)
		}
		mount, _ := mountOptions(t, dir)
		if slices.Contains(mount, "ro") != ro {
			t.Fatalf("after Remount(read-only %t): %v", ro, mount)
		}
		for _, f := range flags {
			if !slices.Contains(mount, f) {
				t.Fatalf("after Remount(read-only %t): lost %s: %v", ro, f, mount)
			}
		}
	}
	med, err := m.Medium(dir)
	if err != nil || !med.MountedReadOnly || med.FSType != "tmpfs" || med.Unwritable != "" {
		t.Fatalf("Medium = %+v, %v; want tmpfs mounted read-only, writable", med, err)
	}
	// The check above has teeth: the kernel really clears the flags a
	// remount is not given.
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if mount, _ := mountOptions(t, dir); slices.Contains(mount, "nosuid") {
		t.Fatalf("a bare remount kept nosuid (%v): the flag check proves nothing on this kernel", mount)
	}
}

func TestSystemMountsRemountErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount(2): needs root")
	}
	// Not a mount point: the kernel says EINVAL, which is no read-only
	// medium.
	err := SystemMounts{}.Remount(t.TempDir(), false)
	if !errors.Is(err, unix.EINVAL) || writeDenied(err) {
		t.Fatalf("Remount of a plain directory = %v, want EINVAL", err)
	}
}
