// SPDX-License-Identifier: GPL-3.0-or-later

// Package units holds entropy-gate's systemd units and drop-ins; its test
// checks them with systemd's own verifier.
package units

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installTree runs `make install` into a temporary root, the way a
// package build would, and returns it.
func installTree(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"make", "msgfmt", "go-md2man"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("make install needs %s (apt-get install make gettext go-md2man)", tool)
		}
	}
	root := t.TempDir()
	build := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", "..", "install", "DESTDIR="+root, "PREFIX=/usr", "OUT="+build+"/bin", "LOCALEOUT="+build+"/locale", "MANOUT="+build+"/man")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return root
}

func TestInstallLayout(t *testing.T) {
	root := installTree(t)
	for _, path := range []string{
		"usr/sbin/entropy-gate",
		"usr/bin/entropy-notify",
		"usr/lib/systemd/user/entropy-notify.service",
		"usr/lib/systemd/system-preset/80-entropy-gate.preset",
		"usr/lib/systemd/user-preset/80-entropy-gate.preset",
		"usr/share/man/man8/entropy-gate.8",
		"usr/share/man/man5/entropy-gate.conf.5",
		"usr/share/man/man1/entropy-notify.1",
		"etc/xdg/autostart/entropy-notify.desktop",
		"usr/share/applications/org.boum.tails.EntropyNotify.desktop",
		"etc/entropy-gate/entropy-gate.conf",
		"etc/entropy-gate/entropy-gate.conf.d",
		"usr/lib/systemd/system/entropy-gate.service",
		"usr/lib/systemd/system/tor@default.service.d/entropy-gate.conf",
		"usr/lib/systemd/system/tails-persistent-storage.service.d/entropy-gate.conf",
		"usr/lib/systemd/system/entropy-gate-dbus.service",
		"usr/lib/systemd/system/entropy-gate-seed.service",
		"usr/share/initramfs-tools/hooks/entropy-gate",
		"usr/share/initramfs-tools/scripts/init-bottom/entropy-gate",
		"usr/share/dbus-1/system.d/org.boum.tails.EntropyGate1.conf",
		"usr/share/dbus-1/system-services/org.boum.tails.EntropyGate1.service",
		"usr/share/dbus-1/interfaces/org.boum.tails.EntropyGate1.xml",
		"usr/share/locale/de/LC_MESSAGES/entropy-gate.mo",
		"usr/share/locale/fr/LC_MESSAGES/entropy-gate.mo",
		"usr/lib/systemd/catalog/entropy-gate.catalog",
	} {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			t.Errorf("make install did not lay out %s: %v", path, err)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "usr/sbin/entropy-gate"))
	if err == nil && fi.Mode().Perm() != 0o755 {
		t.Errorf("entropy-gate installed with mode %v", fi.Mode().Perm())
	}
	// Units are enabled by presets into /etc, where disable can undo it;
	// a link in a .wants folder under /usr could not be turned off.
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			t.Errorf("make install made the link %s: units are enabled by presets", strings.TrimPrefix(path, root))
		}
		return err
	})
}

// TestPresetsEnableAndDisableUndoes enables the units as a distribution
// does, by their presets, then checks that a user can turn the notifier
// off again.
func TestPresetsEnableAndDisableUndoes(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl not installed (apt-get install systemd)")
	}
	root := installTree(t)
	systemctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("systemctl", append([]string{"--root=" + root}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("systemctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	links := []struct{ link, unit string }{
		{"etc/systemd/system/sysinit.target.wants/entropy-gate-seed.service", "/usr/lib/systemd/system/entropy-gate-seed.service"},
		{"etc/systemd/system/sysinit.target.wants/entropy-gate.service", "/usr/lib/systemd/system/entropy-gate.service"},
		{"etc/systemd/user/graphical-session.target.wants/entropy-notify.service", "/usr/lib/systemd/user/entropy-notify.service"},
	}
	// Without a matching rule systemd enables a unit: a distribution's
	// catch-all rule disabling everything else proves that ours match.
	for _, dir := range []string{"system-preset", "user-preset"} {
		if err := os.WriteFile(filepath.Join(root, "usr/lib/systemd", dir, "99-default.preset"), []byte("disable *\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	systemctl("preset-all")
	systemctl("--global", "preset-all")
	for _, l := range links {
		if target, err := os.Readlink(filepath.Join(root, l.link)); err != nil || target != l.unit {
			t.Errorf("after preset-all, %s -> %q (%v), want -> %s", l.link, target, err, l.unit)
		}
	}
	systemctl("--global", "disable", "entropy-notify.service")
	if _, err := os.Lstat(filepath.Join(root, links[2].link)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("systemctl --global disable left %s: %v", links[2].link, err)
	}
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	root := installTree(t)
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	// The units our drop-ins extend belong to other packages: stand-ins
	// with the same names let the verifier load the drop-ins.
	for name, text := range map[string]string{
		"tor@.service":                     "[Service]\nExecStart=/bin/true\n",
		"tails-persistent-storage.service": "[Service]\nExecStart=/bin/true\n",
	} {
		if err := os.WriteFile(filepath.Join(unitDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/true"), []byte("#!/bin/sh\n"), 0o755)
	// The boot's targets come from systemd itself.
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(targets) == 0 {
		t.Skip("systemd's targets not installed")
	}
	for _, target := range targets {
		b, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(unitDir, filepath.Base(target)), b, 0o644)
	}
	units := []string{"entropy-gate.service", "entropy-gate-seed.service", "tor@default.service", "tails-persistent-storage.service"}
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no", "--root=" + root}, units...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
