// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLiveKeyFollowsTheTree(t *testing.T) {
	tree := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	key := func() string {
		t.Helper()
		k, err := liveKey("base", LiveRecipe{Tree: tree})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write("usr/sbin/entropy-gate", "binary", 0o755)
	write("etc/entropy-gate/entropy-gate.conf", "# defaults", 0o644)
	first := key()
	if again := key(); again != first {
		t.Fatalf("the same tree gave two keys: %s, %s", first, again)
	}
	changes := []struct {
		name   string
		change func()
	}{
		{name: "content", change: func() { write("usr/sbin/entropy-gate", "binary 2", 0o755) }},
		{name: "mode", change: func() { write("usr/sbin/entropy-gate", "binary 2", 0o700) }},
		{name: "new file", change: func() { write("etc/entropy-gate/entropy-gate.conf.d/x.conf", "", 0o644) }},
		{name: "link", change: func() {
			if err := os.Symlink("entropy-gate", filepath.Join(tree, "usr/sbin/eg")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	seen := map[string]string{first: "first"}
	for _, c := range changes {
		c.change()
		k := key()
		if prev, ok := seen[k]; ok {
			t.Errorf("after a %s change the key is that of %s", c.name, prev)
		}
		seen[k] = c.name
	}
	if k, err := liveKey("other base", LiveRecipe{Tree: tree}); err != nil || seen[k] != "" {
		t.Errorf("another base gave key %s (%v), seen as %q", k, err, seen[k])
	}
}

func TestInitramfsUnder(t *testing.T) {
	r := newInitramfs()
	r.addFile("/init", 0o755, []byte("init"))
	r.addFile("/etc/systemd/system/x.service", 0o644, []byte("[Unit]"))
	r.addSymlink("/etc/systemd/system/multi-user.target.wants/x.service", "/etc/systemd/system/x.service")
	moved := r.under("vmtest/root")
	var names []string
	for _, e := range moved.entries {
		names = append(names, e.name)
	}
	want := []string{
		"vmtest", "vmtest/root", "vmtest/root/dev", "vmtest/root/init",
		"vmtest/root/etc", "vmtest/root/etc/systemd", "vmtest/root/etc/systemd/system", "vmtest/root/etc/systemd/system/x.service",
		"vmtest/root/etc/systemd/system/multi-user.target.wants", "vmtest/root/etc/systemd/system/multi-user.target.wants/x.service",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries:\n got %q\nwant %q", names, want)
	}
	if link := moved.entries[len(moved.entries)-1]; string(link.data) != "/etc/systemd/system/x.service" {
		t.Errorf("link target %q changed", link.data)
	}
}

func TestLiveBootFilesHoldTheKernelArguments(t *testing.T) {
	files := liveBootFiles()
	for _, name := range []string{"syslinux/live64.cfg", "EFI/debian/grub.cfg"} {
		if !strings.Contains(files[name], strings.Join(LiveKernelArgs, " ")) {
			t.Errorf("%s lacks %q:\n%s", name, LiveKernelArgs, files[name])
		}
	}
}
