// SPDX-License-Identifier: GPL-3.0-or-later

package packaging

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// packageName is the binary package debian/control builds.
const packageName = "entropy-gate"

// buildPackage runs `make deb` into a temporary folder and returns the
// .changes file and the .deb.
func buildPackage(t *testing.T) (changes, deb string) {
	t.Helper()
	if _, err := os.Stat("/usr/share/pkgconfig/systemd.pc"); err != nil {
		t.Skip("systemd.pc not installed (apt-get install systemd)")
	}
	testenv.NeedCommands(t, "lintian")
	out := t.TempDir()
	start := time.Now()
	deb, err := vmtest.MakeDeb(context.Background(), out)
	if errors.Is(err, vmtest.ErrUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("make deb took %v", time.Since(start).Round(100*time.Millisecond))
	return findOne(t, filepath.Join(out, packageName+"_*.changes")), deb
}

func findOne(t *testing.T, pattern string) string {
	t.Helper()
	found, err := filepath.Glob(pattern)
	if err != nil || len(found) != 1 {
		t.Fatalf("want one %s, found %q (%v)", pattern, found, err)
	}
	return found[0]
}

// TestDebianPackage builds the package once and checks it as an archive
// would.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian package: skipped in -short mode")
	}
	changes, deb := buildPackage(t)

	t.Run("lintian", func(t *testing.T) {
		start := time.Now()
		out, err := exec.Command("lintian", "--fail-on", "error", "--display-info", changes).CombinedOutput()
		t.Logf("lintian took %v:\n%s", time.Since(start).Round(100*time.Millisecond), out)
		if err != nil {
			t.Errorf("lintian reports errors: %v", err)
		}
	})

	t.Run("contents", func(t *testing.T) {
		out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --contents: %v", err)
		}
		listing := string(out)
		for _, want := range []string{
			"./usr/sbin/entropy-gate", "./usr/bin/entropy-notify",
			"./usr/share/man/man8/entropy-gate.8.gz", "./usr/share/man/man5/entropy-gate.conf.5.gz",
			"./usr/share/man/man1/entropy-notify.1.gz", "/systemd/system/entropy-gate.service",
			"./usr/lib/systemd/user/entropy-notify.service", "./usr/lib/systemd/user-preset/80-entropy-gate.preset",
		} {
			if !strings.Contains(listing, want) {
				t.Errorf("the package lacks %s", want)
			}
		}
		if strings.Contains(listing, ".wants/") {
			t.Errorf("the package ships enablement links, which disable could not undo:\n%s", listing)
		}
	})

	t.Run("install-remove-purge", func(t *testing.T) { installRemovePurge(t, deb) })
}

// The folders dpkg keeps its records, caches and logs in, which an
// installation may change for good.
var packageManagerState = []string{"var/log", "var/lib/dpkg", "var/cache"}

// installRemovePurge installs the package into a copy of the lab's clean
// Debian 12 system, checks that it is installed and enabled, then removes
// and purges it and compares the system's files with what they were.
func installRemovePurge(t *testing.T, deb string) {
	if os.Geteuid() != 0 {
		t.Skip("installing a package in a chroot needs root (sudo make test)")
	}
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := t.TempDir()
	start := time.Now()
	if err := lab.UnpackSystem(ctx, root); errors.Is(err, vmtest.ErrUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("unpacking the clean system took %v", time.Since(start).Round(100*time.Millisecond))
	before, err := Snapshot(root, packageManagerState...)
	if err != nil {
		t.Fatal(err)
	}
	inChroot := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	start = time.Now()
	debInRoot := "/tmp/" + filepath.Base(deb)
	copyFile(t, deb, filepath.Join(root, debInRoot))
	inChroot("dpkg", "--install", debInRoot)
	// Again, as an upgrade runs the maintainer scripts: over an installed
	// version, with its conffiles in place.
	inChroot("dpkg", "--install", debInRoot)
	if err := os.Remove(filepath.Join(root, debInRoot)); err != nil {
		t.Fatal(err)
	}
	if got := inChroot("/usr/sbin/entropy-gate", "version"); !strings.Contains(got, "0.") {
		t.Errorf("entropy-gate version in the chroot: %q", got)
	}
	// Enabled by the maintainer scripts from the units' [Install]
	// sections, in /etc where systemctl disable undoes it.
	for _, link := range []string{
		"etc/systemd/system/sysinit.target.wants/entropy-gate.service",
		"etc/systemd/system/sysinit.target.wants/entropy-gate-seed.service",
		"etc/systemd/user/graphical-session.target.wants/entropy-notify.service",
	} {
		if _, err := os.Readlink(filepath.Join(root, link)); err != nil {
			t.Errorf("installed but not enabled: %v", err)
		}
	}
	// What the service writes as it runs, which purge must remove too.
	history := filepath.Join(root, "var/lib/entropy-gate/history.jsonl")
	if err := os.MkdirAll(filepath.Dir(history), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(history, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	inChroot("dpkg", "--remove", packageName)
	if _, err := os.Stat(filepath.Join(root, "etc/entropy-gate/entropy-gate.conf")); err != nil {
		t.Errorf("remove took the configuration file, which only purge should: %v", err)
	}
	inChroot("dpkg", "--purge", packageName)
	t.Logf("install, remove and purge took %v", time.Since(start).Round(100*time.Millisecond))

	after, err := Snapshot(root, packageManagerState...)
	if err != nil {
		t.Fatal(err)
	}
	added, removed, changed := Diff(before, after)
	for _, d := range []struct {
		what  string
		paths []string
	}{{"left behind", added}, {"removed", removed}, {"changed", changed}} {
		if len(d.paths) > 0 {
			t.Errorf("after purge, files %s:\n%s", d.what, strings.Join(d.paths, "\n"))
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
}
