// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// The notifier's data files: the user unit as shipped from the source
// tree, the desktop files as `make desktop` builds them (desktopFiles).
const (
	userUnit     = "../../units/user/entropy-notify.service"
	autostart    = "autostart/entropy-notify.desktop"
	applications = "applications/" + AppID + ".desktop"
)

// standIn writes a stand-in entropy-notify into dir and returns its path,
// for programs that check that the one they are told about exists.
func standIn(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "entropy-notify")
	writeFile(t, bin, "#!/bin/sh\n")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// desktopFiles builds the desktop files, their Name and Comment
// translated, into a directory of their own and returns it.
func desktopFiles(t testing.TB) string {
	t.Helper()
	testenv.NeedCommands(t, "make", "msgfmt")
	dir := t.TempDir()
	if out, err := exec.Command("make", "-s", "-C", "../..", "desktop", "DESKTOPOUT="+dir).CombinedOutput(); err != nil {
		t.Fatalf("make desktop: %v\n%s", err, out)
	}
	return dir
}

// TestUserUnitVerifies runs systemd's verifier on the user unit. It has no
// --root in user mode, so it checks a copy whose ExecStart names a stand-in
// binary that exists.
func TestUserUnitVerifies(t *testing.T) {
	testenv.NeedCommands(t, "systemd-analyze")
	dir := t.TempDir()
	bin := standIn(t, dir)
	text := readText(t, userUnit)
	const exec0 = "ExecStart=/usr/bin/entropy-notify"
	if !strings.Contains(text, exec0+"\n") {
		t.Fatalf("%s: want %s", userUnit, exec0)
	}
	unit := filepath.Join(dir, "unit", "entropy-notify.service")
	writeFile(t, unit, strings.Replace(text, exec0, "ExecStart="+bin, 1))
	runtime := filepath.Join(dir, "runtime")
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "--user", "verify", "--man=no", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
	out, err := cmd.CombinedOutput()
	// The verifier exits 0 after some warnings, such as unknown keys.
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"PartOf=graphical-session.target", "WantedBy=graphical-session.target", "ConditionUser=!@system"} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("%s lacks %s", userUnit, want)
		}
	}
}

func TestDesktopFiles(t *testing.T) {
	built := desktopFiles(t)
	for _, tt := range []struct {
		name, path string
		want       []string
	}{
		{name: "autostart", path: autostart, want: []string{"Exec=entropy-notify", "Icon=security-medium-symbolic", "X-systemd-skip=true", "X-GNOME-HiddenUnderSystemd=true"}},
		// GNOME finds it from the desktop-entry hint, AppID.
		{name: "application", path: applications, want: []string{"Exec=entropy-notify", "Icon=security-medium-symbolic", "X-GNOME-UsesNotifications=true", "NoDisplay=true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(built, tt.path)
			text := readText(t, path)
			// Translated through po/, as the notifications are.
			want := append(tt.want, "Name[de]=Entropy Gate", "Comment[de]=Warnt, wenn der Zufallszahlengenerator nicht in gutem Zustand ist",
				"Comment[fr]=Avertit quand le générateur de nombres aléatoires n'est pas en bon état")
			for _, w := range want {
				if !strings.Contains(text, "\n"+w+"\n") {
					t.Errorf("%s lacks %s", path, w)
				}
			}
			testenv.NeedCommands(t, "desktop-file-validate")
			if out, err := exec.Command("desktop-file-validate", path).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("desktop-file-validate %s: %v\n%s", path, err, out)
			}
		})
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
