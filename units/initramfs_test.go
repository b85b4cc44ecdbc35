// SPDX-License-Identifier: GPL-3.0-or-later

package units

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inNamespace runs script with sh in a private mount namespace where each
// stand-in is bind-mounted over its target, so the real hook and boot
// script run unchanged against stand-ins of what they call and write.
func inNamespace(t *testing.T, script string, standIns map[string]string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	mounts := ""
	for target, standIn := range standIns {
		mounts += fmt.Sprintf("mount --bind %q %q && ", standIn, target)
	}
	// A script that hangs fails its test, in its own process group so
	// that nothing it started lingers.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", mounts+`sh "$1"`, "sh", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
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
	if out, err := inNamespace(t, hook, map[string]string{"/usr/share/initramfs-tools": stub}); err != nil {
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
			stderr := filepath.Join(t.TempDir(), "stderr")
			os.WriteFile(filepath.Join(sbin, "entropy-gate"), []byte("#!/bin/sh\necho \"$*\" >"+args+"\nreadlink /proc/self/fd/2 >"+stderr+"\nexit "+tt.exit+"\n"), 0o755)
			if out, err := inNamespace(t, script, map[string]string{"/sbin": sbin}); err != nil {
				t.Fatalf("the boot script failed the boot: %v: %s", err, out)
			}
			if b, _ := os.ReadFile(args); strings.TrimSpace(string(b)) != "seed load" {
				t.Errorf("entropy-gate called with %q, want seed load", b)
			}
			// There, entropy-gate tags its lines and gives their priority.
			if b, _ := os.ReadFile(stderr); strings.TrimSpace(string(b)) != "/dev/kmsg" {
				t.Errorf("entropy-gate's stderr is %q, want the kernel log /dev/kmsg", b)
			}
		})
	}
}

// A seed load that hangs (a device that stops answering) must not hold the
// boot: the script gives up on it after its limit and the boot goes on.
func TestInitramfsScriptBoundsAHangingSeedLoad(t *testing.T) {
	script, _ := filepath.Abs("initramfs-tools/scripts/init-bottom/entropy-gate")
	sbin := t.TempDir()
	os.WriteFile(filepath.Join(sbin, "entropy-gate"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755)
	t.Setenv("ENTROPY_GATE_LOAD_LIMIT", "1")
	start := time.Now()
	if out, err := inNamespace(t, script, map[string]string{"/sbin": sbin}); err != nil {
		t.Fatalf("the boot script failed the boot: %v: %s", err, out)
	}
	// The limit is 1 s; a script that waits for the load takes 600.
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("the boot script waited %v for a hanging seed load, limit 1s", waited)
	}
}
