package notifier

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The notifier's data files, as shipped from the source tree.
const (
	userUnit     = "../../units/user/entropy-notify.service"
	autostart    = "../../units/autostart/entropy-notify.desktop"
	applications = "../../units/applications/" + AppID + ".desktop"
)

// TestUserUnitVerifies runs systemd's verifier on the user unit. It has no
// --root in user mode, so it checks a copy whose ExecStart names a stand-in
// binary that exists.
func TestUserUnitVerifies(t *testing.T) {
	needCommands(t, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "entropy-notify")
	writeFile(t, bin, "#!/bin/sh\n")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
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
	for _, tt := range []struct {
		name, path string
		want       []string
	}{
		{name: "autostart", path: autostart, want: []string{"Exec=entropy-notify", "X-systemd-skip=true", "X-GNOME-HiddenUnderSystemd=true"}},
		// GNOME finds it from the desktop-entry hint, AppID.
		{name: "application", path: applications, want: []string{"Exec=entropy-notify", "X-GNOME-UsesNotifications=true", "NoDisplay=true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := readText(t, tt.path)
			for _, w := range tt.want {
				if !strings.Contains(text, "\n"+w+"\n") {
					t.Errorf("%s lacks %s", tt.path, w)
				}
			}
			if _, err := exec.LookPath("desktop-file-validate"); err != nil {
				t.Skip("desktop-file-validate not installed (Debian package desktop-file-utils)")
			}
			if out, err := exec.Command("desktop-file-validate", tt.path).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("desktop-file-validate %s: %v\n%s", tt.path, err, out)
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
