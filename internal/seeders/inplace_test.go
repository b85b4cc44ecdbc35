// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Where a file cannot provably be rewritten through the medium's block
// device, nothing is written and the caller is told to go through the
// file system (errNotThroughDevice), or that the medium is read-only.
// The writes themselves run on a real vfat in the QEMU lab
// (TestVfatWritesThroughTheDevice).
func TestRewriteThroughDeviceRefuses(t *testing.T) {
	tests := []struct {
		name      string
		medium    Medium
		device    bool // Device names a regular file, not a block device
		want      error
		askDevice bool
	}{
		{name: "file system read-write through another mount", medium: Medium{Major: 8, Minor: 17, MountedReadOnly: true}, want: errNotThroughDevice},
		{name: "no block device", medium: Medium{MountedReadOnly: true, FileSystemReadOnly: true}, want: errNotThroughDevice},
		{name: "the node is not the medium's device", medium: Medium{Major: 8, Minor: 17, MountedReadOnly: true, FileSystemReadOnly: true}, device: true, want: errNotThroughDevice, askDevice: true},
		{name: "no device node", medium: Medium{Major: 8, Minor: 17, MountedReadOnly: true, FileSystemReadOnly: true}, want: errNotThroughDevice, askDevice: true},
		{name: "unwritable medium", medium: Medium{Major: 8, Minor: 17, MountedReadOnly: true, FileSystemReadOnly: true, Unwritable: "read-only device"}, want: ErrReadOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "token")
			old, new := bytes.Repeat([]byte("a"), 512), bytes.Repeat([]byte("b"), 512)
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			m := &fakeMounts{medium: tt.medium}
			fakeDevice := filepath.Join(t.TempDir(), "device")
			if tt.device {
				if err := os.WriteFile(fakeDevice, make([]byte, 1<<20), 0o600); err != nil {
					t.Fatal(err)
				}
				m.device = fakeDevice
			}
			err := rewriteThroughDevice(m, dir, []fileRewrite{{path: path, old: old, new: new}})
			if !errors.Is(err, tt.want) {
				t.Fatalf("rewriteThroughDevice = %v, want %v", err, tt.want)
			}
			if m.deviceAsked != tt.askDevice {
				t.Errorf("Device asked %t, want %t", m.deviceAsked, tt.askDevice)
			}
			if !bytes.Equal(readFile(t, path), old) || len(m.remounts) != 0 {
				t.Fatalf("the file changed or the medium was remounted (%v)", m.remounts)
			}
			if tt.device && !bytes.Equal(readFile(t, fakeDevice), make([]byte, 1<<20)) {
				t.Fatal("the node that is not the medium's device was written")
			}
		})
	}
}
