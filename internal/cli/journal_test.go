// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging/logtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// mainEnv makes the test binary run as entropy-gate, for tests that need
// its stderr as the installed program has it.
const mainEnv = "ENTROPY_GATE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		os.Exit(Run(context.Background(), os.Args[1:], System(os.Stdout, os.Stderr)))
	}
	os.Exit(m.Run())
}

// TestConfigProblemsPriority: config errors and warnings reach the
// journal at their priority, and a terminal as plain lines.
func TestConfigProblemsPriority(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "entropy-gate.conf")
	if err := os.WriteFile(conf, []byte("[Gate]\nThreshold=lots\nColour=blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		journal bool
		want    []string
	}{
		{name: "journal", journal: true, want: []string{"<3>error: " + conf + ":2: ", "<4>warning: " + conf + ":3: "}},
		{name: "plain", want: []string{"error: " + conf + ":2: ", "warning: " + conf + ":3: "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "config", "--check", "--config", conf)
			cmd.Env = append(os.Environ(), mainEnv+"=1", "LANGUAGE=", "LC_ALL=C")
			stderr := logtest.Stderr(t, cmd, tt.journal)
			if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != ExitUsage {
				t.Fatalf("config --check: %v, want exit %d", err, ExitUsage)
			}
			logtest.WantLines(t, stderr(), tt.want)
		})
	}
}

// TestSeedLinesPriority: a seed backend that failed is a warning, the
// others are information.
func TestSeedLinesPriority(t *testing.T) {
	var b bytes.Buffer
	dir := t.TempDir()
	seedFile := filepath.Join(dir, "seed")
	env := Env{Pool: pool.NewFake(pool.State{EntropyAvail: 256, PoolSize: 256})}
	var c config.Seed
	// No way to find the boot disk: the sector backend fails.
	c.Sector.Enable, c.Sector.Device = true, "auto"
	c.File.Enable, c.File.Path = true, seedFile
	seedRunner(env, c, logging.New(&b, logging.Journal, logging.Identifier)).Load(context.Background())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want one per backend:\n%s", len(lines), b.String())
	}
	if want := "<4>warning: seed load sector: not used: "; !strings.HasPrefix(lines[0], want) {
		t.Errorf("failed backend: got %q, want it to start with %q", lines[0], want)
	}
	if want := "<6>seed load file:" + seedFile + ": "; !strings.HasPrefix(lines[1], want) {
		t.Errorf("working backend: got %q, want it to start with %q", lines[1], want)
	}
}

// TestKernelLogLines runs entropy-gate as the initramfs does, with stderr
// on the real kernel log: its lines there carry their priority and the
// program's name (the journal later takes it for the syslog identifier).
// It writes one error line to this machine's kernel log.
func TestKernelLogLines(t *testing.T) {
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("open /dev/kmsg: %v (needs root: sudo make test)", err)
	}
	defer kmsg.Close()
	// Read only what comes after this point.
	reader, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("read /dev/kmsg: %v", err)
	}
	defer reader.Close()
	if _, err := reader.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "entropy-gate.conf")
	if err := os.WriteFile(conf, []byte("[Gate]\nThreshold=lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "config", "--check", "--config", conf)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "LANGUAGE=", "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = io.Discard, kmsg
	cmd.Run()

	// A record is "PRIORITY,SEQUENCE,TIME,FLAGS;MESSAGE", the priority
	// with the facility: 8 for user programs.
	want := fmt.Sprintf("%d,", 8+int(logging.Err))
	var records []string
	buf := make([]byte, 8192)
	for {
		n, err := reader.Read(buf)
		if err != nil {
			break // EAGAIN: no more records
		}
		record := string(buf[:n])
		records = append(records, record)
		if strings.Contains(record, conf) {
			prefix, message, _ := strings.Cut(record, ";")
			if !strings.HasPrefix(prefix, want) || !strings.HasPrefix(message, "entropy-gate: error: "+conf+":2: ") {
				t.Errorf("kernel log record %q, want priority %s and entropy-gate: error: %s:2: …", record, want, conf)
			}
			return
		}
	}
	t.Errorf("no record naming %s in the kernel log; new records: %q", conf, records)
}
