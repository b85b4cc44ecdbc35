// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/dbusapi"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

func TestDBusUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "help", args: []string{"dbus", "--help"}, wantCode: ExitOK},
		{name: "bad idle timeout", args: []string{"dbus", "--idle-timeout", "soon"}, wantCode: ExitUsage, wantErr: "--idle-timeout"},
		{name: "zero wait cap", args: []string{"dbus", "--max-wait", "0"}, wantCode: ExitUsage, wantErr: "--max-wait"},
		{name: "no waiters allowed", args: []string{"dbus", "--max-waiters", "0"}, wantCode: ExitUsage, wantErr: "--max-waiters"},
		{name: "argument", args: []string{"dbus", "extra"}, wantCode: ExitUsage, wantErr: "extra"},
		{name: "unknown privileged user", args: []string{"dbus", "--privileged-user", "no-such-user-here"}, wantCode: ExitUsage, wantErr: "no-such-user-here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEnv(t)
			if code := te.run(tt.args...); code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.wantCode, te.stderr)
			}
			if !strings.Contains(te.stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", te.stderr, tt.wantErr)
			}
		})
	}
}

func TestLookupUIDs(t *testing.T) {
	tests := []struct {
		name, list string
		want       []uint32
		wantErr    bool
	}{
		{name: "none", list: "", want: nil},
		{name: "names and uids", list: "root, 1000,daemon", want: []uint32{0, 1000, 1}},
		{name: "unknown name", list: "no-such-user-here", wantErr: true},
		{name: "uid out of range", list: "4294967296", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookupUIDs(tt.list)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("lookupUIDs(%q) = %v, %v; want %v, error %v", tt.list, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDBusWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/no-bus")
	te := newTestEnv(t)
	if code := te.run("dbus"); code != ExitUsage {
		t.Errorf("exit %d without a bus, want %d", code, ExitUsage)
	}
	if !strings.Contains(te.stderr.String(), "connect to the system bus") {
		t.Errorf("stderr %q does not say what failed", te.stderr)
	}
}

// startSessionBus runs a dbus-daemon whose permissive session policy lets
// the test own any name, and returns its address.
func startSessionBus(t *testing.T) string {
	t.Helper()
	testenv.NeedCommands(t, "dbus-daemon")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(addr)
}

// TestDBusReadyIsStatusReady serves the D-Bus API from the command and
// checks that its Ready says what `entropy-gate status` says, with the
// threshold from the same configuration.
func TestDBusReadyIsStatusReady(t *testing.T) {
	addr := startSessionBus(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	tests := []struct {
		name   string
		config string
		avail  int
		ready  bool
		want   bool
	}{
		{name: "not initialized", avail: 12, want: false},
		{name: "initialized, pool full", avail: 256, ready: true, want: true},
		{name: "initialized, below the threshold", config: "[Gate]\nThreshold=200\n", avail: 100, ready: true, want: false},
		{name: "threshold 0 from the configuration", config: "[Gate]\nThreshold=0\n", avail: 12, ready: true, want: true},
		{name: "threshold above the pool is clamped", config: "[Gate]\nThreshold=4096\n", avail: 256, ready: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEnv(t)
			if tt.config != "" {
				os.WriteFile(te.Sources.File, []byte(tt.config), 0o644)
			}
			te.fake.SetEntropyAvail(tt.avail)
			if tt.ready {
				te.fake.SetReady()
			}
			statusCode := te.run("status", "--json")
			var st Status
			if err := json.Unmarshal(te.stdout.Bytes(), &st); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() { done <- Run(ctx, []string{"dbus", "--idle-timeout", "0"}, te.Env) }()
			conn, err := dbus.Connect(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var ready dbus.Variant
			deadline := time.Now().Add(20 * time.Second)
			for {
				err = conn.Object(dbusapi.BusName, dbusapi.ObjectPath).Call("org.freedesktop.DBus.Properties.Get", 0, dbusapi.Interface, "Ready").Store(&ready)
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if code := <-done; code != ExitOK {
				t.Errorf("dbus exited %d when stopped, want 0; stderr %s", code, te.stderr)
			}
			if err != nil {
				t.Fatalf("Get Ready: %v", err)
			}
			if ready.Value() != st.Ready || st.Ready != tt.want || (statusCode == ExitOK) != tt.want {
				t.Errorf("D-Bus Ready %v, status ready %v (exit %d); want %v", ready.Value(), st.Ready, statusCode, tt.want)
			}
		})
	}
}
