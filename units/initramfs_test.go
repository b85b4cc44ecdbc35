package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inNamespace runs script with sh in a private mount namespace where dir
// is bind-mounted over target, so the real hook and boot script run
// unchanged against stand-ins of what they call.
func inNamespace(t *testing.T, target, dir, script string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2" && sh "$3"`, "sh", dir, target, script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInitramfsHook(t *testing.T) {
	if _, err := os.Stat("/usr/share/initramfs-tools"); err != nil {
		t.Skip("initramfs-tools not installed")
	}
	hook, _ := filepath.Abs("initramfs-tools/hooks/entropy-gate")
	stub := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	os.WriteFile(filepath.Join(stub, "hook-functions"), []byte(`
copy_exec() { echo "copy_exec $*" >>`+calls+`; }
copy_file() { echo "copy_file $*" >>`+calls+`; }
`), 0o644)
	if out, err := inNamespace(t, "/usr/share/initramfs-tools", stub, hook); err != nil {
		t.Fatalf("hook: %v: %s", err, out)
	}
	b, _ := os.ReadFile(calls)
	if !strings.Contains(string(b), "copy_exec /usr/sbin/entropy-gate /sbin") {
		t.Errorf("the hook did not copy the binary: %q", b)
	}
	if out, err := exec.Command("sh", hook, "prereqs").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("hook prereqs: %v, %q", err, out)
	}
}

func TestInitramfsScriptLoadsSeedsAndNeverFails(t *testing.T) {
	script, _ := filepath.Abs("initramfs-tools/scripts/init-bottom/entropy-gate")
	for _, tt := range []struct {
		name, exit string
	}{
		{name: "seed load succeeds", exit: "0"},
		{name: "seed load fails", exit: "3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sbin := t.TempDir()
			args := filepath.Join(t.TempDir(), "args")
			os.WriteFile(filepath.Join(sbin, "entropy-gate"), []byte("#!/bin/sh\necho \"$*\" >"+args+"\nexit "+tt.exit+"\n"), 0o755)
			if out, err := inNamespace(t, "/sbin", sbin, script); err != nil {
				t.Fatalf("the boot script failed the boot: %v: %s", err, out)
			}
			if b, _ := os.ReadFile(args); strings.TrimSpace(string(b)) != "seed load" {
				t.Errorf("entropy-gate called with %q, want seed load", b)
			}
		})
	}
}
