// SPDX-License-Identifier: GPL-3.0-or-later

package seeding

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func fakePool() *pool.Fake {
	return pool.NewFake(pool.State{EntropyAvail: 3, PoolSize: 256, Semantics: pool.Modern})
}

func fileConfig(t *testing.T) config.Seed {
	c := config.Default().Seed
	c.File = config.FileSeed{Enable: true, Path: filepath.Join(t.TempDir(), "seed")}
	return c
}

// TestLifecycle follows one seed file over boots: a new file is written
// but nothing credited; refreshed once the pool is ready, it is credited
// at the next boot, exactly once.
func TestLifecycle(t *testing.T) {
	c := fileConfig(t)
	backends, failed := Backends(c, nil)
	if len(backends) != 1 || len(failed) != 0 {
		t.Fatalf("backends %v, failed %v", backends, failed)
	}
	ctx := context.Background()

	// First boot: no seed yet.
	boot1 := fakePool()
	got := runner(boot1).run(ctx, backends, seeders.ActionLoad)
	if len(got) != 1 || !got[0].Refreshed || got[0].CreditedBits != 0 || got[0].StoredCreditable {
		t.Fatalf("first load: %+v", got)
	}
	// The gate opens: the refresh is now creditable.
	boot1.SetReady()
	got = runner(boot1).run(ctx, backends, seeders.ActionRefresh)
	if len(got) != 1 || !got[0].Refreshed || !got[0].StoredCreditable || got[0].Action != seeders.ActionRefresh {
		t.Fatalf("refresh: %+v", got)
	}

	// Second boot: credited, and its replacement is not creditable.
	boot2 := fakePool()
	got = runner(boot2).run(ctx, backends, seeders.ActionLoad)
	if len(got) != 1 || got[0].CreditedBits != 256 || got[0].Content != seeders.ContentRecord {
		t.Fatalf("second load: %+v", got)
	}
	if credits := boot2.Credits(); len(credits) != 1 || credits[0].Bits != 256 {
		t.Errorf("kernel credits: %+v", credits)
	}
	// A second load in the same boot finds that replacement: mixed only.
	got = runner(boot2).run(ctx, backends, seeders.ActionLoad)
	if got[0].CreditedBits != 0 || !got[0].Mixed {
		t.Errorf("load of a replacement made before readiness: %+v", got)
	}
	if credits := boot2.Credits(); len(credits) != 1 {
		t.Errorf("the same boot credited %d times", len(credits))
	}
}

func TestBackendsReportsWhatCannotBeBuilt(t *testing.T) {
	c := config.Default().Seed
	c.Sector.Enable = true
	backends, failed := Backends(c, noDisk{})
	if len(backends) != 0 || len(failed) != 1 || !strings.Contains(failed[0].Error, "no boot medium here") {
		t.Errorf("backends %v, failed %+v", backends, failed)
	}
	c.Sector.Device, c.Sector.ImageDiskGUIDs = "/dev/sdz", []string{"nonsense"}
	if _, failed := Backends(c, noDisk{}); len(failed) != 1 || !strings.Contains(failed[0].Error, "nonsense") {
		t.Errorf("bad GUID: %+v", failed)
	}
	c.Sector.ImageDiskGUIDs = nil
	c.Sector.LegacySector = "mix"
	backends, _ = Backends(c, noDisk{})
	sector, ok := backends[0].Backend.(seeders.SectorBackend)
	if !ok || sector.Path != "/dev/sdz" || sector.Foreign != seeders.ForeignMix || sector.LBA != 34 {
		t.Errorf("sector backend %+v", backends[0].Backend)
	}
}

type noDisk struct{}

func (noDisk) BootDisk(string) (string, error) { return "", errors.New("no boot medium here") }

// stuck is a backend whose device never answers, like a pulled-out stick.
type stuck struct{ release chan struct{} }

func (stuck) Name() string { return "stuck" }
func (s stuck) Load() (seeders.Loaded, error) {
	<-s.release
	return seeders.Loaded{}, errors.New("gone")
}
func (stuck) Store(seeders.Record) error { return nil }

func TestRunGivesUpOnAStuckBackend(t *testing.T) {
	s := stuck{release: make(chan struct{})}
	defer close(s.release)
	c := fileConfig(t)
	backends, _ := Backends(c, nil)
	backends = append([]Backend{{Backend: s}}, backends...)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := runner(fakePool())
	r.Grace = 50 * time.Millisecond
	got := r.run(ctx, backends, seeders.ActionSave)
	if len(got) != 2 || !strings.Contains(got[0].Error, ErrTimeout.Error()) {
		t.Fatalf("results %+v", got)
	}
	// The deadline is shared: backends after it are not tried either.
	if got[1].Refreshed || !strings.HasPrefix(got[1].Reason, "not tried") {
		t.Errorf("a backend ran after the deadline: %+v", got[1])
	}
	if _, err := os.Stat(c.File.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the backend after the deadline wrote its seed: %v", err)
	}
}

func TestKernelAdapter(t *testing.T) {
	p := fakePool()
	k := Kernel{Pool: p}
	if ready, _ := k.Ready(); ready {
		t.Error("ready before readiness")
	}
	// Only a run's token credits.
	if err := k.Credit(make([]byte, 32), 256); !errors.Is(err, ErrCreditRevoked) || len(p.Credits()) != 0 {
		t.Errorf("Credit without a run = %v, credits %+v", err, p.Credits())
	}
	p.SetUnknown(pool.ErrUnknownReadiness)
	if ready, err := k.Ready(); ready || err == nil {
		t.Error("unknown readiness must be not ready, with the reason")
	}
}

func TestBackendsBuildsEveryKind(t *testing.T) {
	c := config.Default().Seed
	c.Medium = "/media/stick"
	c.Sector.Enable, c.Sector.Device = true, "/dev/sdz"
	c.FAT.Enable, c.Cmdline.Enable, c.File.Enable = true, true, true
	const image = "00112233-4455-6677-8899-AABBCCDDEEFF"
	c.Sector.ImageDiskGUIDs = []string{image}
	backends, failed := Backends(c, nil)
	if len(failed) != 0 || len(backends) != 4 {
		t.Fatalf("backends %v, failed %v", backends, failed)
	}
	fat, ok1 := backends[1].Backend.(seeders.FATBackend)
	cmdline, ok2 := backends[2].Backend.(seeders.CmdlineBackend)
	if !ok1 || !ok2 || fat.Medium != "/media/stick" || fat.Path != c.FAT.Path || cmdline.Insert || !slices.Equal(cmdline.Files, c.Cmdline.Files) || !backends[2].OncePerBoot {
		t.Errorf("FAT %+v, cmdline %+v", backends[1].Backend, backends[2].Backend)
	}
	// A published image's seed is everyone's, on the FAT as in the sector.
	if want, _ := seeders.ParseGUID(image); len(fat.ImageDiskGUIDs) != 1 || fat.ImageDiskGUIDs[0] != want {
		t.Errorf("FAT image disk GUIDs %v, want %s", fat.ImageDiskGUIDs, image)
	}
	if backends[0].WearRewrites != c.Sector.WearRewrites || backends[1].WearRewrites != 0 {
		t.Errorf("wear rewrites apply to the sector only")
	}
}

// finishing is a backend that needs a moment past the deadline, as one in
// the middle of a remount would.
type finishing struct{ delay time.Duration }

func (finishing) Name() string { return "finishing" }
func (f finishing) Load() (seeders.Loaded, error) {
	time.Sleep(f.delay)
	return seeders.Loaded{Content: seeders.ContentEmpty, ReadOnly: true}, nil
}
func (finishing) Store(seeders.Record) error { return nil }

func TestRunLetsABackendFinishAfterTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	got := runner(fakePool()).run(ctx, []Backend{{Backend: finishing{delay: 200 * time.Millisecond}}}, seeders.ActionSave)
	if len(got) != 1 || got[0].Error != "" || !got[0].Loaded {
		t.Errorf("results %+v, want the backend's own result", got)
	}
}

// crashing is a backend with a bug.
type crashing struct{}

func (crashing) Name() string                  { return "crashing" }
func (crashing) Load() (seeders.Loaded, error) { panic("index out of range") }
func (crashing) Store(seeders.Record) error    { return nil }

func TestRunSurvivesACrashingBackend(t *testing.T) {
	c := fileConfig(t)
	backends, _ := Backends(c, nil)
	got := runner(fakePool()).run(context.Background(), append([]Backend{{Backend: crashing{}}}, backends...), seeders.ActionLoad)
	if len(got) != 2 || !strings.Contains(got[0].Error, "crashed") || !got[1].Refreshed {
		t.Errorf("results %+v", got)
	}
}

// A once-per-boot backend (the command-line token) is written by the load,
// or else by the refresh once the gate is open; never by a save.
func TestOncePerBootBackends(t *testing.T) {
	tests := []struct {
		name        string
		loadWrote   bool
		wantRefresh bool
	}{
		{name: "written at load: not again", loadWrote: true, wantRefresh: false},
		{name: "not written at load (CRNG not initialized): at the refresh", loadWrote: false, wantRefresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fileConfig(t)
			backends, _ := Backends(c, nil)
			backends[0].OncePerBoot = true
			prior := []seeders.Result{{Backend: backends[0].Name(), Action: seeders.ActionLoad, Loaded: true, Refreshed: tt.loadWrote}}
			got := runner(fakePool()).run(context.Background(), PlanRefresh(backends, prior), seeders.ActionRefresh)
			if (len(got) == 1) != tt.wantRefresh {
				t.Errorf("refresh results %+v, want a refresh %t", got, tt.wantRefresh)
			}
			if got := runner(fakePool()).run(context.Background(), backends, seeders.ActionSave); len(got) != 0 {
				t.Errorf("save ran a once-per-boot backend: %+v", got)
			}
		})
	}
}

// sectorLike keeps a record in memory and counts its rewrites, as a
// sector backend would do them.
type sectorLike struct {
	held     []byte
	rewrites int
}

func (s *sectorLike) Name() string { return "sector-like" }

func (s *sectorLike) Load() (seeders.Loaded, error) {
	return seeders.Classify(append(s.held, make([]byte, 512-len(s.held))...), seeders.ForeignRefuse)
}

func (s *sectorLike) Store(r seeders.Record) (err error) {
	s.held, err = r.Encode()
	return err
}

func (s *sectorLike) Rewrite(r seeders.Record, times int) (int, error) {
	s.rewrites += times
	return times, s.Store(r)
}

// The first write to a location is repeated (WearRewrites) after the gate
// opens, in the refresh, not within the boot's load budget.
func TestWearRewritesWaitForTheRefresh(t *testing.T) {
	for attempt := 0; ; attempt++ {
		loc := &sectorLike{}
		backends := []Backend{{Backend: loc, WearRewrites: 50}}
		load := runner(fakePool()).run(context.Background(), backends, seeders.ActionLoad)
		if loc.rewrites != 0 || len(load) != 1 || !load[0].WearRewritesDue {
			t.Fatalf("the load rewrote %d times, results %+v; want none, and rewrites due", loc.rewrites, load)
		}
		runner(fakePool()).run(context.Background(), PlanRefresh(backends, load), seeders.ActionRefresh)
		if loc.rewrites == 0 && attempt < 10 {
			continue // drew 0 of 0…49
		}
		if loc.rewrites == 0 {
			t.Fatal("the refresh after the load did no rewrite")
		}
		before := loc.rewrites
		// A later refresh or save, or the next boot's load: none due.
		runner(fakePool()).run(context.Background(), backends, seeders.ActionSave)
		if loc.rewrites != before {
			t.Errorf("a save rewrote %d more times", loc.rewrites-before)
		}
		return
	}
}

// runner is a Runner on p without a lock or a results file.
func runner(p pool.Pool) *Runner { return &Runner{Deps: Deps{Pool: p}} }

// late is a backend that answers only once released, as a slow or
// pulled-out stick may, and then behaves as the backend it wraps.
type late struct {
	seeders.Backend
	release chan struct{}
}

func (l late) Load() (seeders.Loaded, error) {
	<-l.release
	return l.Backend.Load()
}

// creditableFile is a file backend holding a creditable record.
func creditableFile(t *testing.T) seeders.FileBackend {
	t.Helper()
	b := seeders.FileBackend{Path: filepath.Join(t.TempDir(), "seed")}
	if res := (seeders.Seeder{Backend: b, Kernel: &seeders.FakeKernel{Initialized: true}}).Refresh(); !res.StoredCreditable {
		t.Fatalf("setting up a creditable seed: %+v", res)
	}
	return b
}

// waitForKernelCall waits until p was credited or mixed into.
func waitForKernelCall(t *testing.T, p *pool.Fake) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if len(p.Credits())+len(p.Mixes()) > 0 {
			return
		}
	}
	t.Fatal("the backend never passed its seed to the kernel")
}

// TestNothingCreditsAfterTheDeadline: once a run's deadline passed, the
// seed lock may be released and another process may load the same
// record; a backend that finishes late, in the grace period or after it
// was left behind, must at most mix.
func TestNothingCreditsAfterTheDeadline(t *testing.T) {
	tests := []struct {
		name string
		// grace is the runner's grace period; the backend is released
		// after the deadline, while the run still waits, or after it
		// gave up.
		grace        time.Duration
		releaseAfter time.Duration
		leftBehind   bool
	}{
		{name: "finishes in the grace period", grace: 5 * time.Second, releaseAfter: 100 * time.Millisecond},
		{name: "left behind, finishes after the run returned", grace: 20 * time.Millisecond, leftBehind: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakePool()
			b := late{Backend: creditableFile(t), release: make(chan struct{})}
			r := runner(p)
			r.Grace = tt.grace
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if !tt.leftBehind {
				time.AfterFunc(tt.releaseAfter, func() { close(b.release) })
			}
			got := r.run(ctx, []Backend{{Backend: b}}, seeders.ActionLoad)
			if tt.leftBehind {
				close(b.release)
			}
			waitForKernelCall(t, p)
			if credits := p.Credits(); len(credits) != 0 {
				t.Errorf("credited %+v after the deadline", credits)
			}
			if len(got) != 1 || got[0].CreditedBits != 0 {
				t.Fatalf("results %+v: reported a credit after the deadline", got)
			}
			if !tt.leftBehind && (!got[0].Mixed || !strings.Contains(got[0].Error, ErrCreditRevoked.Error())) {
				t.Errorf("result %+v, want mixed and why not credited", got[0])
			}
		})
	}
}

func TestRunnerLogsFailuresAsWarnings(t *testing.T) {
	var info, warnings []string
	record := func(to *[]string) func(string, ...any) {
		return func(format string, args ...any) { *to = append(*to, fmt.Sprintf(format, args...)) }
	}
	c := fileConfig(t)
	r := NewRunner(c, nil, Deps{Pool: fakePool(), Logf: record(&info), Warnf: record(&warnings)})
	r.Backends = append([]Backend{{Backend: crashing{}}}, r.Backends...)
	r.Load(context.Background())
	if len(warnings) != 1 || !strings.Contains(warnings[0], "seed load crashing: failed") {
		t.Errorf("warnings %q, want the crashed backend's", warnings)
	}
	if len(info) != 1 || !strings.Contains(info[0], "seed load file:") {
		t.Errorf("information %q, want the file backend's", info)
	}
}

// The backends on the boot medium share one remount budget per boot,
// marked beside the results file; without a results file there is none.
func TestRunnerGivesTheMediumOneRemount(t *testing.T) {
	c := config.Default().Seed
	c.FAT.Enable, c.Cmdline.Enable = true, true
	results := filepath.Join(t.TempDir(), "seeds.json")
	want := seeders.RemountBudget{Marker: filepath.Join(filepath.Dir(results), RemountMarker)}
	r := NewRunner(c, nil, Deps{Pool: fakePool(), ResultsPath: results})
	budgets := 0
	for _, b := range r.Backends {
		var got seeders.Mounts
		switch medium := b.Backend.(type) {
		case seeders.FATBackend:
			got = medium.Mounts
		case seeders.CmdlineBackend:
			got = medium.Mounts
		}
		if got == seeders.Mounts(want) {
			budgets++
		}
	}
	if budgets != 2 {
		t.Errorf("%d of the FAT and command-line backends have the boot's remount budget, want both", budgets)
	}
	for _, b := range NewRunner(c, nil, Deps{Pool: fakePool()}).Backends {
		if fat, ok := b.Backend.(seeders.FATBackend); ok && fat.Mounts != nil {
			t.Errorf("FAT backend mounts %v without a results file, want the system's", fat.Mounts)
		}
	}
}
