package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging/logtest"
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
	logSeeds(logging.New(&b, logging.Journal, logging.Identifier), []gatestate.Seed{
		{Backend: "file:/seed", Action: gatestate.SeedLoad, Loaded: true, CreditedBits: 256, Reason: "credited 256 bits"},
		{Backend: "sector:/dev/sda", Action: gatestate.SeedLoad, Error: "read-only", Reason: "not written: read-only medium"},
	})
	want := "<6>seed load file:/seed: credited 256 bits\n<4>warning: seed load sector:/dev/sda: not written: read-only medium\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
