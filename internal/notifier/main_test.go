// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging/logtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// mainEnv makes the test binary run as something else, for tests and
// benchmarks that need a process of their own.
const mainEnv = "ENTROPY_NOTIFY_TEST_MAIN"

func TestMain(m *testing.M) {
	switch os.Getenv(mainEnv) {
	case "entropy-notify":
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	case "poll-loop":
		pollLoop()
	}
	os.Exit(m.Run())
}

// command returns the test binary set up to run as entropy-notify.
func command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(env, mainEnv+"=entropy-notify", "LANGUAGE=", "LC_ALL=C")
	return cmd
}

func needReadyHost(t testing.TB) {
	t.Helper()
	if r, _ := pool.NewKernel(pool.Roots{}).Ready(); r != pool.Ready {
		t.Skip("host CRNG not initialized")
	}
}

// stateFile writes a gate state file and returns its path.
func stateFile(t testing.TB, phase gatestate.Phase, outcome gatestate.Outcome) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	if err := gatestate.Write(path, gatestate.State{Phase: phase, Outcome: outcome, WaitedMS: 90000}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMainOnce(t *testing.T) {
	needReadyHost(t)
	noConfig := filepath.Join(t.TempDir(), "none.conf")
	for _, tt := range []struct {
		name      string
		state     string
		wantCode  int
		wantFirst string
	}{
		{name: "gate not run", state: filepath.Join(t.TempDir(), "missing.json"), wantCode: ExitOK, wantFirst: "ok"},
		{name: "gate open", state: stateFile(t, gatestate.Open, gatestate.Ready), wantCode: ExitOK, wantFirst: "ok"},
		{name: "degraded boot", state: stateFile(t, gatestate.Open, gatestate.Timeout), wantCode: ExitWarn, wantFirst: "warn: gate-timed-out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main([]string{"--once", "--config", noConfig, "--state-file", tt.state}, &stdout, &stderr)
			first, _, _ := strings.Cut(stdout.String(), "\n")
			if code != tt.wantCode || first != tt.wantFirst {
				t.Errorf("exit %d, first line %q; want %d, %q\nstderr: %s", code, first, tt.wantCode, tt.wantFirst, stderr.String())
			}
		})
	}
}

func TestMainUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{name: "help", args: []string{"--help"}, want: ExitOK},
		{name: "unknown flag", args: []string{"--bogus"}, want: ExitFail},
		{name: "argument", args: []string{"extra"}, want: ExitFail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := Main(tt.args, &stdout, &stderr); got != tt.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

// TestMainProcess runs entropy-notify as its own process against the host
// kernel and a degraded state file: it shows the warning, a second
// instance leaves at once, and SIGTERM withdraws the warning and exits 0.
func TestMainProcess(t *testing.T) {
	needReadyHost(t)
	d := newDesktop(t)
	mon := d.monitor()
	args := []string{"--config", filepath.Join(d.dir, "none.conf"), "--state-file", stateFile(t, gatestate.Open, gatestate.Timeout)}
	cmd := command(d.env(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd) })
	shown := mon.waitAnswered(t, 1)[0]
	if shown.Summary != "Started without enough randomness" {
		t.Errorf("summary %q", shown.Summary)
	}
	d.waitDisplayed(1)

	second := command(d.env(), args...)
	out, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "already running") {
		t.Errorf("second instance: %v, %s; want exit 0, already running", err, out)
	}

	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	mon.waitClosed(t, shown.ID)
	d.waitDisplayed(0)
	if mon.callCount() != 1 {
		t.Errorf("%d Notify calls, want 1: the second instance must not notify", mon.callCount())
	}
}

// TestMainLogPriority: config errors and warnings reach the journal at
// their priority, and other stderrs as plain lines that name the program.
func TestMainLogPriority(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "entropy-gate.conf")
	writeFile(t, conf, "[Notify]\nEntropyLow=lots\nColour=blue\n")
	for _, tt := range []struct {
		name    string
		journal bool
		want    []string
	}{
		{name: "journal", journal: true, want: []string{"<3>error: config: " + conf + ":2: ", "<4>warning: config: " + conf + ":3: "}},
		{name: "plain", want: []string{"entropy-notify: error: config: " + conf + ":2: ", "entropy-notify: warning: config: " + conf + ":3: "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := command(os.Environ(), "--once", "--config", conf, "--state-file", filepath.Join(t.TempDir(), "none.json"))
			stderr := logtest.Stderr(t, cmd, tt.journal)
			// The verdict depends on the host's kernel: only the log counts.
			cmd.Run()
			logtest.WantLines(t, stderr(), tt.want)
		})
	}
}
