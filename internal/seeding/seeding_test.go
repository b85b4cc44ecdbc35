package seeding

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
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
	got := Run(ctx, backends, Kernel{boot1}, gatestate.SeedLoad)
	if len(got) != 1 || !got[0].Refreshed || got[0].CreditedBits != 0 || got[0].StoredCreditable {
		t.Fatalf("first load: %+v", got)
	}
	// The gate opens: the refresh is now creditable.
	boot1.SetReady()
	got = Run(ctx, backends, Kernel{boot1}, gatestate.SeedRefresh)
	if len(got) != 1 || !got[0].Refreshed || !got[0].StoredCreditable || got[0].Action != gatestate.SeedRefresh {
		t.Fatalf("refresh: %+v", got)
	}

	// Second boot: credited, and its replacement is not creditable.
	boot2 := fakePool()
	got = Run(ctx, backends, Kernel{boot2}, gatestate.SeedLoad)
	if len(got) != 1 || got[0].CreditedBits != 256 || got[0].Content != "record" {
		t.Fatalf("second load: %+v", got)
	}
	if credits := boot2.Credits(); len(credits) != 1 || credits[0].Bits != 256 {
		t.Errorf("kernel credits: %+v", credits)
	}
	// A second load in the same boot finds that replacement: mixed only.
	got = Run(ctx, backends, Kernel{boot2}, gatestate.SeedLoad)
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
	if testing.Short() {
		t.Skip("waits for the grace period")
	}
	s := stuck{release: make(chan struct{})}
	defer close(s.release)
	c := fileConfig(t)
	backends, _ := Backends(c, nil)
	backends = append([]Backend{{Backend: s}}, backends...)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got := Run(ctx, backends, Kernel{fakePool()}, gatestate.SeedSave)
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

func TestResultsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "seeds.json")
	if _, err := ReadResults(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadResults(missing) = %v", err)
	}
	want := []gatestate.Seed{{Backend: "file:/x", Action: gatestate.SeedLoad, Loaded: true, Content: "record", CreditedBits: 256, Reason: "credited 256 bits"}}
	if err := SaveResults(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResults(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadResults = %+v, %v", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func TestKernelAdapter(t *testing.T) {
	p := fakePool()
	k := Kernel{p}
	if ready, _ := k.Ready(); ready {
		t.Error("ready before readiness")
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
	backends, failed := Backends(c, nil)
	if len(failed) != 0 || len(backends) != 4 {
		t.Fatalf("backends %v, failed %v", backends, failed)
	}
	fat, ok1 := backends[1].Backend.(seeders.FATBackend)
	cmdline, ok2 := backends[2].Backend.(seeders.CmdlineBackend)
	if !ok1 || !ok2 || fat.Medium != "/media/stick" || fat.Path != c.FAT.Path || cmdline.Insert || !slices.Equal(cmdline.Files, c.Cmdline.Files) || !backends[2].LoadOnly {
		t.Errorf("FAT %+v, cmdline %+v", backends[1].Backend, backends[2].Backend)
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
	got := Run(ctx, []Backend{{Backend: finishing{delay: 200 * time.Millisecond}}}, Kernel{fakePool()}, gatestate.SeedSave)
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
	got := Run(context.Background(), append([]Backend{{Backend: crashing{}}}, backends...), Kernel{fakePool()}, gatestate.SeedLoad)
	if len(got) != 2 || !strings.Contains(got[0].Error, "crashed") || !got[1].Refreshed {
		t.Errorf("results %+v", got)
	}
}

func TestLoadOnlyBackendsSkipRefreshAndSave(t *testing.T) {
	c := fileConfig(t)
	backends, _ := Backends(c, nil)
	backends[0].LoadOnly = true
	for _, action := range []string{gatestate.SeedRefresh, gatestate.SeedSave} {
		if got := Run(context.Background(), backends, Kernel{fakePool()}, action); len(got) != 0 {
			t.Errorf("%s ran a load-only backend: %+v", action, got)
		}
	}
	if got := Run(context.Background(), backends, Kernel{fakePool()}, gatestate.SeedLoad); len(got) != 1 {
		t.Errorf("load skipped a load-only backend")
	}
}
