// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitramfsReadsWithCpio checks the archive writer against GNU cpio.
func TestInitramfsReadsWithCpio(t *testing.T) {
	RequireTools(t)
	r := newInitramfs()
	r.addFile("/init", 0o755, []byte("#!/bin/sh\n"))
	r.addFile("/vmtest/modules/00-virtio.ko", 0o644, []byte("odd-sized module"))
	r.addFile("bin/empty", 0o600, nil)
	var archive bytes.Buffer
	if err := writeNewc(&archive, r.entries); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(archive.Bytes())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	listing := map[string]string{} // name → mode column
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		listing[fields[len(fields)-1]] = fields[0]
	}
	want := map[string]string{
		"dev":                         "drwxr-xr-x",
		"dev/console":                 "crw-------",
		"init":                        "-rwxr-xr-x",
		"vmtest":                      "drwxr-xr-x",
		"vmtest/modules":              "drwxr-xr-x",
		"vmtest/modules/00-virtio.ko": "-rw-r--r--",
		"bin":                         "drwxr-xr-x",
		"bin/empty":                   "-rw-------",
	}
	for name, mode := range want {
		if listing[name] != mode {
			t.Errorf("%s: mode %q, want %q", name, listing[name], mode)
		}
	}
	if len(listing) != len(want) {
		t.Errorf("archive lists %v, want %d entries", listing, len(want))
	}

	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames", "vmtest/modules/00-virtio.ko")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "vmtest/modules/00-virtio.ko")); err != nil || string(got) != "odd-sized module" {
		t.Errorf("extracted %q, %v", got, err)
	}
}

func TestNewcPadding(t *testing.T) {
	var archive bytes.Buffer
	entries := []cpioEntry{{name: "a", mode: modeRegular | 0o644, data: []byte("xyz")}}
	if err := writeNewc(&archive, entries); err != nil {
		t.Fatal(err)
	}
	// Header 110 bytes + "a\0" = 112, data 3 + 1 padding, then the trailer:
	// 110 + "TRAILER!!!\0" (11) + 3 padding.
	if archive.Len() != 112+4+124 {
		t.Errorf("archive is %d bytes, want %d", archive.Len(), 112+4+124)
	}
	if !bytes.HasPrefix(archive.Bytes(), []byte("070701")) || !bytes.Contains(archive.Bytes(), []byte("TRAILER!!!")) {
		t.Error("archive lacks the newc magic or the trailer")
	}
}
