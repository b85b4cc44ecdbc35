package seeding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Kernel adapts a pool.Pool to what the seeders need.
type Kernel struct{ Pool pool.Pool }

var _ seeders.Kernel = Kernel{}

// Credit implements seeders.Kernel.
func (k Kernel) Credit(seed []byte, bits int) error { return k.Pool.Credit(seed, bits) }

// Mix implements seeders.Kernel.
func (k Kernel) Mix(seed []byte) error { return k.Pool.Mix(seed) }

// Random implements seeders.Kernel.
func (k Kernel) Random(buf []byte) error { return k.Pool.Random(buf) }

// Ready implements seeders.Kernel: only getrandom's "ready" is ready.
func (k Kernel) Ready() (bool, error) {
	r, err := k.Pool.Ready()
	return r == pool.Ready, err
}

// Backend is a configured seed location and how to run it.
type Backend struct {
	seeders.Backend
	// WearRewrites is passed to the Seeder (sector backends only).
	WearRewrites int
	// LoadOnly backends are written once per boot, when loaded, not
	// again after the gate opens or at shutdown.
	LoadOnly bool
}

// Backends builds the enabled backends in a fixed order. A backend that
// cannot be set up is not built; its result explains why.
func Backends(c config.Seed, locate Locator) ([]Backend, []gatestate.Seed) {
	var backends []Backend
	var failed []gatestate.Seed
	if c.Sector.Enable {
		b, err := sectorBackend(c, locate)
		if err != nil {
			failed = append(failed, gatestate.Seed{Backend: "sector", Action: gatestate.SeedLoad, Reason: "not used: " + err.Error(), Error: err.Error()})
		} else {
			backends = append(backends, Backend{Backend: b, WearRewrites: c.Sector.WearRewrites})
		}
	}
	if c.FAT.Enable {
		backends = append(backends, Backend{Backend: seeders.FATBackend{Medium: c.Medium, Path: c.FAT.Path}})
	}
	if c.Cmdline.Enable {
		// Only lines that already carry the token change: the image
		// build puts it there. Adding words to a bootloader's kernel
		// line could break the boot.
		// Once per boot: every rewrite of a bootloader file is a moment
		// in which pulling the stick could damage it, and the token
		// only matters for the next boot.
		backends = append(backends, Backend{Backend: seeders.CmdlineBackend{Medium: c.Medium, Files: c.Cmdline.Files}, LoadOnly: true})
	}
	if c.File.Enable {
		backends = append(backends, Backend{Backend: seeders.FileBackend{Path: c.File.Path}})
	}
	return backends, failed
}

// Locator finds the boot disk for Device=auto.
type Locator interface {
	BootDisk(medium string) (string, error)
}

var _ Locator = seeders.SysRoots{}

func sectorBackend(c config.Seed, locate Locator) (seeders.SectorBackend, error) {
	b := seeders.SectorBackend{Path: c.Sector.Device, LBA: c.Sector.LBA}
	if c.Sector.LegacySector == "mix" {
		b.Foreign = seeders.ForeignMix
	}
	for _, s := range c.Sector.ImageDiskGUIDs {
		g, err := seeders.ParseGUID(s)
		if err != nil {
			return b, fmt.Errorf("image disk GUID %q: %w", s, err)
		}
		b.ImageDiskGUIDs = append(b.ImageDiskGUIDs, g)
	}
	if b.Path == "auto" {
		if locate == nil {
			return b, errors.New("no way to find the boot disk here: configure Device=")
		}
		disk, err := locate.BootDisk(c.Medium)
		if err != nil {
			return b, fmt.Errorf("find the boot disk: %w", err)
		}
		b.Path = disk
	}
	return b, nil
}

// ErrTimeout is the result of a backend that did not finish in time,
// e.g. because its device was pulled out.
var ErrTimeout = errors.New("gave up waiting for the seed location")

// Grace is how long Run still waits, after its deadline, for the backend
// it is running: it may be between remounting the boot medium read-write
// and back, and leaving it read-write is worse than being late.
const Grace = 10 * time.Second

// Run runs action (gatestate.SeedLoad, SeedRefresh or SeedSave) on each
// backend in turn, each bounded by ctx and Grace: a backend still running
// then is reported as timed out and left behind, and the backends after
// it are not tried. LoadOnly backends only take part in loads.
func Run(ctx context.Context, backends []Backend, k seeders.Kernel, action string) []gatestate.Seed {
	var out []gatestate.Seed
	for _, b := range backends {
		if b.LoadOnly && action != gatestate.SeedLoad {
			continue
		}
		if ctx.Err() != nil {
			out = append(out, gatestate.Seed{Backend: b.Name(), Action: action, Reason: "not tried: " + ErrTimeout.Error(), Error: ErrTimeout.Error()})
			continue
		}
		done := make(chan seeders.Result, 1)
		go func() { done <- runOne(b, k, action) }()
		select {
		case r := <-done:
			out = append(out, FromResult(r, action))
			continue
		case <-ctx.Done():
		}
		select {
		case r := <-done:
			out = append(out, FromResult(r, action))
		case <-time.After(Grace):
			out = append(out, gatestate.Seed{Backend: b.Name(), Action: action, Reason: "not finished: " + ErrTimeout.Error(), Error: ErrTimeout.Error()})
		}
	}
	return out
}

// runOne runs the protocol on one backend. A panic in it is a failed
// backend, not a failed boot (DESIGN rule 7).
func runOne(b Backend, k seeders.Kernel, action string) (res seeders.Result) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("seed backend crashed: %v", p)
			res = seeders.Result{Backend: b.Name(), Reason: "failed: " + err.Error(), Error: err.Error(), Err: err}
		}
	}()
	s := seeders.Seeder{Backend: b.Backend, Kernel: k, WearRewrites: b.WearRewrites}
	if action == gatestate.SeedLoad {
		return s.Seed()
	}
	return s.Refresh()
}

// FromResult is a seeder's result as the state file keeps it.
func FromResult(r seeders.Result, action string) gatestate.Seed {
	return gatestate.Seed{
		Backend:          r.Backend,
		Action:           action,
		Loaded:           r.Loaded,
		Content:          contentName(r),
		Creditable:       r.Creditable,
		Refreshed:        r.Refreshed,
		StoredCreditable: r.StoredCreditable,
		CreditedBits:     r.CreditedBits,
		Mixed:            r.Mixed,
		Reason:           r.Reason,
		Error:            r.Error,
	}
}

func contentName(r seeders.Result) string {
	if !r.Loaded {
		return ""
	}
	return r.Content.String()
}

// DefaultResultsPath is where `seed load` leaves its results for the
// gate, which starts after it.
const DefaultResultsPath = "/run/entropy-gate/seeds.json"

// SaveResults writes results atomically, world-readable: they hold no
// secrets.
func SaveResults(path string, seeds []gatestate.Seed) error {
	b, err := json.Marshal(seeds)
	if err != nil {
		return fmt.Errorf("save seed results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save seed results: %w", err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save seed results: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save seed results: %w", err)
	}
	return nil
}

// ReadResults reads what SaveResults wrote; os.ErrNotExist means the seeds
// were not loaded this boot.
func ReadResults(path string) ([]gatestate.Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var seeds []gatestate.Seed
	if err := json.Unmarshal(b, &seeds); err != nil {
		return nil, fmt.Errorf("parse seed results: %w", err)
	}
	return seeds, nil
}
