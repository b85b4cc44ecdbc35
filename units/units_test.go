// Package units holds entropy-gate's systemd units and drop-ins; its test
// checks them with systemd's own verifier.
package units

import (
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
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	root := t.TempDir()
	build := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", "..", "install", "DESTDIR="+root, "PREFIX=/usr", "OUT="+build+"/bin", "LOCALEOUT="+build+"/locale")
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
		"usr/lib/systemd/user/graphical-session.target.wants/entropy-notify.service",
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
