// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeding"
)

type testEnv struct {
	Env
	stdout, stderr *bytes.Buffer
	fake           *pool.Fake
	dir            string
}

// newTestEnv is a system with a fake modern kernel that is not ready, no
// configuration files and no state file.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	te := &testEnv{
		stdout: &bytes.Buffer{},
		stderr: &bytes.Buffer{},
		fake:   pool.NewFake(pool.State{EntropyAvail: 12, PoolSize: 256, WriteWakeupThreshold: 256, Semantics: pool.Modern, PollMeansReady: true}),
		dir:    dir,
	}
	te.Env = Env{
		Stdout:    te.stdout,
		Stderr:    te.stderr,
		Pool:      te.fake,
		Sources:   config.Sources{File: filepath.Join(dir, "entropy-gate.conf"), DropInDir: filepath.Join(dir, "entropy-gate.conf.d")},
		StatePath: filepath.Join(dir, "run", "state.json"),
		SeedLock:  filepath.Join(dir, "run", "seed.lock"),
		// Empty kernel trees: nothing of the host's shows.
		Doctor: doctor.Sources{Roots: pool.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Dev: filepath.Join(dir, "dev")}},
	}
	return te
}

func (te *testEnv) run(args ...string) int {
	te.stdout.Reset()
	te.stderr.Reset()
	return Run(context.Background(), args, te.Env)
}

func (te *testEnv) ready() {
	te.fake.SetEntropyAvail(256)
	te.fake.SetReady()
}

func TestStatusJSON(t *testing.T) {
	te := newTestEnv(t)
	if code := te.run("status", "--json"); code != ExitNotReady {
		t.Errorf("exit %d on a kernel that is not ready, want %d", code, ExitNotReady)
	}
	var got map[string]any
	if err := json.Unmarshal(te.stdout.Bytes(), &got); err != nil {
		t.Fatalf("status --json is not one JSON object: %v\n%s", err, te.stdout)
	}
	want := map[string]any{
		"ready": false, "crng_initialized": false, "entropy_avail": 12.0, "poolsize": 256.0,
		"threshold": 256.0, "semantics": "modern",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if g, _ := got["gate"].(map[string]any); g["state"] != "not-run" {
		t.Errorf("gate = %v, want state not-run", got["gate"])
	}

	te.ready()
	if code := te.run("status", "--json"); code != ExitOK {
		t.Errorf("exit %d on a ready kernel, want 0", code)
	}
	var st Status
	if err := json.Unmarshal(te.stdout.Bytes(), &st); err != nil || !st.Ready || !st.CRNGInitialized {
		t.Errorf("status = %+v, %v; want ready", st, err)
	}
}

func TestStatusThresholdFromConfig(t *testing.T) {
	te := newTestEnv(t)
	os.WriteFile(te.Sources.File, []byte("[Gate]\nThreshold=0\n"), 0o644)
	te.fake.SetReady()
	if code := te.run("status", "--json"); code != ExitOK {
		t.Errorf("exit %d: readiness-only threshold with an initialized CRNG must be ready", code)
	}
}

func TestStatusReadsGateState(t *testing.T) {
	te := newTestEnv(t)
	te.ready()
	if err := gatestate.Write(te.StatePath, gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Timeout, Reason: "timeout of 5s expired", WaitedMS: 5003}); err != nil {
		t.Fatal(err)
	}
	te.run("status", "--json")
	var st Status
	if err := json.Unmarshal(te.stdout.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Gate != (Gate{State: "open", WaitedMS: 5003, Outcome: "timed-out", Reason: "timeout of 5s expired"}) {
		t.Errorf("gate = %+v", st.Gate)
	}
	te.run("status")
	for _, want := range []string{"Ready:         yes\n", "Gate:          opened by timeout after 5.003s: timeout of 5s expired\n", "Hardware RNG:  none\n"} {
		if !strings.Contains(te.stdout.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, te.stdout)
		}
	}
}

func TestStatusUnreadableStateIsUnknown(t *testing.T) {
	te := newTestEnv(t)
	os.MkdirAll(filepath.Dir(te.StatePath), 0o755)
	os.WriteFile(te.StatePath, []byte("{garbage"), 0o644)
	te.run("status", "--json")
	var st Status
	json.Unmarshal(te.stdout.Bytes(), &st)
	if st.Gate.State != "unknown" {
		t.Errorf("gate state = %q, want unknown", st.Gate.State)
	}
	if !strings.Contains(te.stderr.String(), "parse gate state") {
		t.Errorf("stderr = %q, want the reason", te.stderr)
	}
}

func TestWait(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		ready  bool
		want   int
		stderr string
	}{
		{name: "ready at once", args: []string{"wait", "--timeout", "1s"}, ready: true, want: ExitOK},
		{name: "times out", args: []string{"wait", "--timeout", "50ms", "--passive"}, want: ExitNotReady},
		{name: "bad timeout", args: []string{"wait", "--timeout", "soon"}, want: ExitUsage, stderr: `--timeout "soon"`},
		{name: "negative threshold", args: []string{"wait", "--threshold", "-1"}, want: ExitUsage, stderr: "--threshold"},
		{name: "unknown flag", args: []string{"wait", "--bogus"}, want: ExitUsage, stderr: "bogus"},
		{name: "stray argument", args: []string{"wait", "now"}, want: ExitUsage, stderr: `unexpected argument "now"`},
		{name: "help", args: []string{"wait", "--help"}, want: ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEnv(t)
			if tt.ready {
				te.ready()
			}
			if got := te.run(tt.args...); got != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", got, tt.want, te.stderr)
			}
			if !strings.Contains(te.stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", te.stderr, tt.stderr)
			}
		})
	}
}

func TestWaitOpensWhenKernelTurnsReady(t *testing.T) {
	te := newTestEnv(t)
	time.AfterFunc(30*time.Millisecond, te.ready)
	if code := te.run("wait", "--timeout", "10s"); code != ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
}

func TestConfigCheck(t *testing.T) {
	te := newTestEnv(t)
	bad := filepath.Join(te.dir, "bad.conf")
	os.WriteFile(bad, []byte("[Gate]\nThreshold=abc\n"), 0o644)
	if code := te.run("config", "--check", "--config", bad); code != ExitUsage {
		t.Errorf("exit %d for a bad value, want 2", code)
	}
	lines := strings.Split(strings.TrimSpace(te.stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], bad+":2") || !strings.Contains(lines[0], "Threshold") {
		t.Errorf("stderr = %q, want one line naming %s:2 and Threshold", te.stderr, bad)
	}
	if !strings.Contains(te.stdout.String(), "Threshold=256") {
		t.Errorf("effective config does not show the default in force:\n%s", te.stdout)
	}

	good := filepath.Join(te.dir, "good.conf")
	os.WriteFile(good, []byte("[Gate]\nThreshold=128\nFrobnicate=yes\n"), 0o644)
	if code := te.run("config", "--check", "--config", good); code != ExitOK {
		t.Errorf("exit %d for a config with only a warning, want 0 (stderr %q)", code, te.stderr)
	}
	if !strings.Contains(te.stdout.String(), "# from "+good+":2\nThreshold=128") {
		t.Errorf("effective config does not say where Threshold came from:\n%s", te.stdout)
	}
	if !strings.Contains(te.stderr.String(), "warning:") {
		t.Errorf("unknown key not warned about: %q", te.stderr)
	}
	if code := te.run("config"); code != ExitUsage {
		t.Errorf("config without --check: exit %d, want 2", code)
	}
}

func TestUsage(t *testing.T) {
	te := newTestEnv(t)
	if code := te.run(); code != ExitUsage {
		t.Errorf("no command: exit %d", code)
	}
	if code := te.run("frobnicate"); code != ExitUsage || !strings.Contains(te.stderr.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, te.stderr)
	}
	if code := te.run("--help"); code != ExitOK || !strings.Contains(te.stdout.String(), "Exit codes") {
		t.Errorf("--help: exit %d, stdout %q", code, te.stdout)
	}
	for _, c := range commands(i18n.English) {
		if code := te.run(c.name, "--help"); code != ExitOK || !strings.Contains(te.stdout.String(), "Usage: entropy-gate "+c.name) {
			t.Errorf("%s --help: exit %d, stdout %q", c.name, code, te.stdout)
		}
	}
	if code := te.run("version"); code != ExitOK || !strings.HasPrefix(te.stdout.String(), "entropy-gate ") {
		t.Errorf("version: exit %d, stdout %q", code, te.stdout)
	}
}

func TestRunService(t *testing.T) {
	tests := []struct {
		name        string
		conf        string
		turnReady   bool
		want        int
		wantPhase   gatestate.Phase
		wantOutcome gatestate.Outcome
		wantReady   bool
	}{
		{name: "opens when ready", conf: "[Gate]\nTimeout=10s\n", turnReady: true, want: ExitOK, wantPhase: gatestate.Open, wantOutcome: gatestate.Ready, wantReady: true},
		{name: "timeout fails closed", conf: "[Gate]\nTimeout=50ms\nOnTimeout=fail\n", want: ExitNotReady, wantPhase: gatestate.TimedOut, wantOutcome: gatestate.Timeout},
		{name: "timeout opens degraded", conf: "[Gate]\nTimeout=50ms\nOnTimeout=open\n", want: ExitOK, wantPhase: gatestate.Open, wantOutcome: gatestate.Timeout, wantReady: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEnv(t)
			te.Notify = true
			sock := filepath.Join(te.dir, "notify")
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", sock)
			os.WriteFile(te.Sources.File, []byte(tt.conf), 0o644)
			if tt.turnReady {
				time.AfterFunc(30*time.Millisecond, te.ready)
			}
			if code := te.run("run"); code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, te.stderr)
			}
			st, err := gatestate.Read(te.StatePath)
			if err != nil {
				t.Fatal(err)
			}
			if st.Phase != tt.wantPhase || st.Outcome != tt.wantOutcome {
				t.Errorf("state file says %s/%s, want %s/%s", st.Phase, st.Outcome, tt.wantPhase, tt.wantOutcome)
			}
			var sawReady bool
			buf := make([]byte, 4096)
			for {
				conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				n, err := conn.Read(buf)
				if err != nil {
					break
				}
				sawReady = sawReady || strings.Contains(string(buf[:n]), "READY=1")
			}
			if sawReady != tt.wantReady {
				t.Errorf("READY=1 sent: %v, want %v", sawReady, tt.wantReady)
			}
		})
	}
}

// splashRecorder records what the boot splash was asked to show.
type splashRecorder struct{ shown []string }

func (d *splashRecorder) Show(text string) { d.shown = append(d.shown, text) }
func (d *splashRecorder) Clear()           {}

func TestRunServiceSpeaksTheBootLanguage(t *testing.T) {
	te := newTestEnv(t)
	te.Sources.Cmdline = filepath.Join(te.dir, "cmdline")
	os.WriteFile(te.Sources.Cmdline, []byte("quiet locales="+i18n.Pseudo+" entropy_gate.timeout=10s\n"), 0o644)
	splash := &splashRecorder{}
	te.Splash = splash
	time.AfterFunc(50*time.Millisecond, te.ready)
	if code := te.run("run"); code != ExitOK {
		t.Fatalf("exit %d (stderr %q)", code, te.stderr)
	}
	if len(splash.shown) == 0 {
		t.Fatal("nothing shown on the splash while waiting")
	}
	for _, text := range splash.shown {
		if !strings.HasPrefix(text, "⟦") || !strings.HasSuffix(text, "⟧") {
			t.Errorf("splash text %q did not go through translation", text)
		}
	}
}

func TestStatusTranslated(t *testing.T) {
	tests := []struct {
		lang string
		want []string
	}{
		{lang: "de_DE.UTF-8", want: []string{"Bereit:", "nein", "12 Bit (Schwelle 256 Bit)", "lief in diesem Systemstart nicht"}},
		{lang: "fr_FR.UTF-8", want: []string{"Prêt :", "non", "12 bits (seuil 256 bits)", "n'a pas été exécutée"}},
		{lang: "tlh", want: []string{"Ready:", "no", "12 bits (threshold 256 bits)", "has not run this boot"}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			te := newTestEnv(t)
			te.Translator = i18n.Find([]string{tt.lang}, "")
			te.run("status")
			for _, want := range tt.want {
				if !strings.Contains(te.stdout.String(), want) {
					t.Errorf("status in %s lacks %q:\n%s", tt.lang, want, te.stdout)
				}
			}
		})
	}
}

func TestHumanOutputAllTranslated(t *testing.T) {
	te := newTestEnv(t)
	te.Translator = i18n.Find([]string{i18n.Pseudo}, "")
	os.MkdirAll(filepath.Dir(te.StatePath), 0o755)
	gatestate.Write(te.StatePath, gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Ready, WaitedMS: 12})
	te.run("status")
	for _, line := range strings.Split(strings.TrimSpace(te.stdout.String()), "\n") {
		label, value, _ := strings.Cut(line, "  ")
		value = strings.TrimSpace(value)
		for _, part := range []string{label, value} {
			if !strings.HasPrefix(part, "⟦") || !strings.HasSuffix(part, "⟧") {
				t.Errorf("untranslated text in %q", line)
			}
		}
	}
}

func TestDoctor(t *testing.T) {
	tests := []struct {
		fixture     string
		ready       bool
		want        int
		wantVerdict string
		wantText    string
	}{
		{fixture: "qemu", want: ExitNotReady, wantVerdict: "advice", wantText: "→ Give it one: QEMU -device virtio-rng-pci"},
		{fixture: "qemu-virtio-rng", ready: true, want: ExitOK, wantVerdict: "fine", wantText: "All is well."},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			te := newTestEnv(t)
			root := filepath.Join("..", "doctor", "testdata", tt.fixture)
			te.Doctor = doctor.Sources{Roots: pool.Roots{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev")}}
			if tt.ready {
				te.ready()
			}
			if code := te.run("doctor"); code != tt.want || !strings.Contains(te.stdout.String(), tt.wantText) {
				t.Errorf("doctor: exit %d, want %d; output lacks %q:\n%s", code, tt.want, tt.wantText, te.stdout)
			}
			if code := te.run("doctor", "--json"); code != tt.want {
				t.Errorf("doctor --json: exit %d, want %d", code, tt.want)
			}
			var report struct {
				Verdict  string `json:"verdict"`
				Findings []struct {
					ID string `json:"id"`
				} `json:"findings"`
			}
			if err := json.Unmarshal(te.stdout.Bytes(), &report); err != nil || report.Verdict != tt.wantVerdict || len(report.Findings) == 0 {
				t.Errorf("doctor --json = %+v, %v; want verdict %s", report, err, tt.wantVerdict)
			}
		})
	}
}

func TestReport(t *testing.T) {
	te := newTestEnv(t)
	te.HistoryPath = filepath.Join("..", "history", "testdata", "history.jsonl")
	svg := filepath.Join(te.dir, "waits.svg")
	if code := te.run("report", "--svg", svg, "--limit", "2"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, te.stderr)
	}
	out := te.stdout.String()
	for _, want := range []string{"Ready by", "5 boots: median wait 0.98 s, 90th percentile 120.00 s, longest 120.00 s.", "1 boot timed out."} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n") != 1+2+2 {
		t.Errorf("--limit 2: want a heading, 2 boots and 2 summary lines:\n%s", out)
	}
	if !strings.Contains(te.stderr.String(), "skipped 3 unreadable records") {
		t.Errorf("stderr = %q, want the skipped count", te.stderr)
	}
	if b, err := os.ReadFile(svg); err != nil || strings.Count(string(b), `class="boot"`) != 5 {
		t.Errorf("SVG: %v, %d marks", err, strings.Count(string(b), `class="boot"`))
	}

	te.run("report", "--json")
	var rep struct {
		Source string `json:"source"`
		Stats  struct {
			Boots    int   `json:"boots"`
			MedianMS int64 `json:"median_ms"`
		} `json:"stats"`
		Boots []map[string]any `json:"boots"`
	}
	if err := json.Unmarshal(te.stdout.Bytes(), &rep); err != nil || rep.Stats.Boots != 5 || rep.Stats.MedianMS != 980 || len(rep.Boots) != 5 {
		t.Errorf("report --json = %+v, %v", rep, err)
	}
}

func TestReportFallsBackToJournal(t *testing.T) {
	te := newTestEnv(t)
	te.HistoryPath = filepath.Join(te.dir, "none.jsonl")
	te.ReadJournal = func(context.Context) ([]history.Record, int, error) {
		return []history.Record{{Time: time.Now(), Outcome: "ready", WaitedMS: 1234, ReadyBy: "jitter"}}, 0, nil
	}
	te.run("report", "--json")
	if !strings.Contains(te.stdout.String(), `"source":"journal"`) || !strings.Contains(te.stdout.String(), `"waited_ms":1234`) {
		t.Errorf("report without a history file = %s", te.stdout)
	}
	te.ReadJournal = nil
	te.run("report")
	if !strings.Contains(te.stdout.String(), "No boots recorded yet.") {
		t.Errorf("empty report = %q", te.stdout)
	}
}

func TestRunServiceRecordsTheBoot(t *testing.T) {
	te := newTestEnv(t)
	te.HistoryPath = filepath.Join(te.dir, "lib", "history.jsonl")
	os.WriteFile(te.Sources.File, []byte("[Gate]\nTimeout=10s\nMode=active\n"), 0o644)
	release := filepath.Join(te.Doctor.ProcPath("sys", "kernel", "osrelease"))
	os.MkdirAll(filepath.Dir(release), 0o755)
	os.WriteFile(release, []byte("6.1.0-28-amd64\n"), 0o644)
	time.AfterFunc(30*time.Millisecond, te.ready)
	if code := te.run("run"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, te.stderr)
	}
	records, _, err := history.Read(te.HistoryPath)
	if err != nil || len(records) != 1 {
		t.Fatalf("history = %v, %v", records, err)
	}
	r := records[0]
	if r.Outcome != "ready" || r.ReadyBy != "jitter" || r.Mode != "active" || r.WaitedMS < 20 || r.Kernel != "6.1.0-28-amd64" {
		t.Errorf("recorded %+v", r)
	}
}

// withFileSeed configures a file seed backend in the test's directory.
func (te *testEnv) withFileSeed(t *testing.T) string {
	t.Helper()
	seed := filepath.Join(te.dir, "seed")
	te.SeedResults = filepath.Join(te.dir, "run", "seeds.json")
	os.WriteFile(te.Sources.File, []byte("[Gate]\nTimeout=10s\n[Seed.File]\nEnable=yes\nPath="+seed+"\n"), 0o644)
	return seed
}

func TestSeedInitThenBootCredits(t *testing.T) {
	te := newTestEnv(t)
	seed := te.withFileSeed(t)

	// An installer on a machine whose CRNG is not ready is refused.
	if code := te.run("seed", "init", "--backend", "file", "--path", seed); code != ExitNotReady {
		t.Fatalf("seed init before readiness: exit %d", code)
	}
	if _, err := os.Stat(seed); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("seed init wrote a seed that could not be credited")
	}
	te.ready()
	if code := te.run("seed", "init", "--backend", "file", "--path", seed); code != ExitOK {
		t.Fatalf("seed init: exit %d: %s", code, te.stderr)
	}
	te.run("seed", "status", "--json")
	var st struct {
		Backends []struct {
			Backend    string `json:"backend"`
			Creditable bool   `json:"creditable"`
		} `json:"backends"`
	}
	if err := json.Unmarshal(te.stdout.Bytes(), &st); err != nil || len(st.Backends) != 1 || !st.Backends[0].Creditable {
		t.Fatalf("seed status after init = %s (%v)", te.stdout, err)
	}

	// Next boot: a fresh kernel; the seed is credited and opens the gate.
	boot := newTestEnv(t)
	boot.Sources, boot.SeedResults = te.Sources, filepath.Join(boot.dir, "seeds.json")
	if code := boot.run("run"); code != ExitOK {
		t.Fatalf("run: exit %d: %s", code, boot.stderr)
	}
	if credits := boot.fake.Credits(); len(credits) != 1 || credits[0].Bits != 256 {
		t.Fatalf("credits = %+v, want the seed's 256 bits", credits)
	}
	state, err := gatestate.Read(boot.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, s := range state.Seeds {
		actions = append(actions, fmt.Sprintf("%s:%d:%t", s.Action, s.CreditedBits, s.StoredCreditable))
	}
	// Loaded and credited (the replacement made before readiness), then
	// refreshed with a creditable seed once the gate opened.
	if want := []string{"load:256:false", "refresh:0:true"}; !slices.Equal(actions, want) {
		t.Errorf("state seeds = %q, want %q", actions, want)
	}
	if !strings.Contains(boot.stderr.String(), "seed load file:"+seed+": credited 256 bits") {
		t.Errorf("log lacks the credit: %s", boot.stderr)
	}
}

func TestRunUsesTheSeedUnitsResults(t *testing.T) {
	te := newTestEnv(t)
	te.withFileSeed(t)
	if code := te.run("seed", "load"); code != ExitOK {
		t.Fatalf("seed load: exit %d", code)
	}
	loaded, err := os.ReadFile(te.SeedResults)
	if err != nil {
		t.Fatal(err)
	}
	te.ready()
	te.run("run")
	state, _ := gatestate.Read(te.StatePath)
	if len(state.Seeds) != 2 || state.Seeds[0].Action != seeders.ActionLoad || !strings.Contains(string(loaded), state.Seeds[0].Reason) {
		t.Errorf("state seeds = %+v, want seed load's results then the refresh", state.Seeds)
	}
	if mixes := te.fake.Mixes(); len(mixes) != 0 {
		t.Errorf("the gate loaded the seeds again: %d mixes", len(mixes))
	}
}

func TestSeedInitRefusesUnsafeDisk(t *testing.T) {
	te := newTestEnv(t)
	te.ready()
	img := filepath.Join(te.dir, "mbr.img")
	data := make([]byte, 64*1024)
	data[510], data[511] = 0x55, 0xaa // an MBR-only disk: GRUB may live in the gap
	copy(data[34*512:], "GRUB core image")
	os.WriteFile(img, data, 0o644)
	if code := te.run("seed", "init", "--device", img); code != ExitNotReady {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(te.stderr.String(), "refused, nothing written") {
		t.Errorf("stderr = %q", te.stderr)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(after, data) {
		t.Errorf("a refused disk changed")
	}
	if code := te.run("seed", "init"); code != ExitUsage {
		t.Errorf("seed init without a target: exit %d", code)
	}
	if code := te.run("seed", "frobnicate"); code != ExitUsage {
		t.Errorf("unknown seed subcommand: exit %d", code)
	}
}

func TestSeedLoadOncePerBoot(t *testing.T) {
	te := newTestEnv(t)
	seed := te.withFileSeed(t)
	te.run("seed", "load")
	first, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	// The seed unit after the initramfs: nothing loaded or written again.
	if code := te.run("seed", "load"); code != ExitOK || !strings.Contains(te.stderr.String(), "1 seed backends already loaded") {
		t.Errorf("second seed load: exit %d, %q", code, te.stderr)
	}
	if again, _ := os.ReadFile(seed); !bytes.Equal(again, first) {
		t.Errorf("the second load rewrote the seed")
	}
}

func TestSeedLoadAddsBackendsTheInitramfsCouldNotReach(t *testing.T) {
	te := newTestEnv(t)
	seed := te.withFileSeed(t)
	// The initramfs loaded the sector seed; the persistent volume's file
	// seed was not there yet.
	initramfs := []seeders.Result{{Backend: "sector:/dev/sda@34", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentRecord, CreditedBits: 256, Refreshed: true}}
	if err := gatestate.WriteSeeds(te.SeedResults, initramfs); err != nil {
		t.Fatal(err)
	}
	te.run("seed", "load")
	got, err := gatestate.ReadSeeds(te.SeedResults)
	if err != nil || len(got) != 2 || got[0] != initramfs[0] || got[1].Backend != "file:"+seed || !got[1].Refreshed {
		t.Errorf("results = %+v, %v; want the initramfs's, then the file seed's", got, err)
	}
}

func TestSeedLoadWaitsForTheSeedLock(t *testing.T) {
	te := newTestEnv(t)
	seed := te.withFileSeed(t)
	// Another process holds the seeds (say, the initramfs script).
	unlock, err := seeding.Lock(context.Background(), te.SeedLock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- te.run("seed", "load") }()
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(seed); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("seed load used the seeds while another process held them")
	}
	unlock()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("seed load did not go on once the lock was free")
	}
	if _, err := os.Stat(seed); err != nil {
		t.Errorf("seed not written after the lock was released: %v", err)
	}
}
