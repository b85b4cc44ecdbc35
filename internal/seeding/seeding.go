// SPDX-License-Identifier: GPL-3.0-or-later

package seeding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Kernel adapts a pool.Pool to what the seeders need. It credits only
// through the credit token of a Runner's run: a Kernel made elsewhere
// (for `seed init`, which never credits) refuses every credit.
type Kernel struct {
	Pool  pool.Pool
	token *creditToken
}

var _ seeders.Kernel = Kernel{}

// ErrCreditRevoked is a credit refused because the run that started the
// backend is over: its deadline passed or it was cancelled, and the seed
// lock may be someone else's by now.
var ErrCreditRevoked = errors.New("credit refused: the seed run is over")

// Credit implements seeders.Kernel.
func (k Kernel) Credit(seed []byte, bits int) error {
	if k.token == nil {
		return ErrCreditRevoked
	}
	return k.token.credit(func() error { return k.Pool.Credit(seed, bits) })
}

// creditToken lets a run's backends credit while the run holds the seed
// lock and is within its deadline, and never after: a backend that
// outlives its deadline runs on in its goroutine, and another process
// may meanwhile take the lock and load the same record.
type creditToken struct {
	// run is the run's context: once it is done, so is crediting, even
	// before the run gets round to revoking.
	run     context.Context
	mu      sync.Mutex
	revoked bool
}

// credit runs credit unless the token is revoked or the run is done.
func (t *creditToken) credit(credit func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.revoked || t.run.Err() != nil {
		return ErrCreditRevoked
	}
	return credit()
}

// revoke refuses every later credit. A credit in progress finishes
// first, so once revoke returns none is under way.
func (t *creditToken) revoke() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.revoked = true
}

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
	// WearRewrites is passed to the Seeder (sector backends only), and
	// so is WearRewritesDue (see PlanRefresh).
	WearRewrites    int
	WearRewritesDue bool
	// OncePerBoot backends are written at most once per boot: at the
	// load, or else at the refresh once the gate is open (see
	// PlanRefresh); never at shutdown.
	OncePerBoot bool
}

// Backends builds the enabled backends in a fixed order. A backend that
// cannot be set up is not built; its result explains why.
func Backends(c config.Seed, locate Locator) ([]Backend, []seeders.Result) {
	var backends []Backend
	var failed []seeders.Result
	if c.Sector.Enable {
		b, err := sectorBackend(c, locate)
		if err != nil {
			failed = append(failed, seeders.Result{Backend: "sector", Action: seeders.ActionLoad, Reason: "not used: " + err.Error(), Error: err.Error()})
		} else {
			backends = append(backends, Backend{Backend: b, WearRewrites: c.Sector.WearRewrites})
		}
	}
	if c.FAT.Enable {
		images, err := imageDiskGUIDs(c)
		if err != nil {
			failed = append(failed, seeders.Result{Backend: "fat", Action: seeders.ActionLoad, Reason: "not used: " + err.Error(), Error: err.Error()})
		} else {
			backends = append(backends, Backend{Backend: seeders.FATBackend{Medium: c.Medium, Path: c.FAT.Path, ImageDiskGUIDs: images}})
		}
	}
	if c.Cmdline.Enable {
		// Only lines that already carry the token change: the image
		// build puts it there. Adding words to a bootloader's kernel
		// line could break the boot.
		// Once per boot: every rewrite of a bootloader file is a moment
		// in which pulling the stick could damage it, and the token
		// only matters for the next boot. It is only made from an
		// initialized CRNG, which the load in the initramfs may not
		// have yet: then the refresh once the gate is open writes it.
		backends = append(backends, Backend{Backend: seeders.CmdlineBackend{Medium: c.Medium, Files: c.Cmdline.Files}, OncePerBoot: true})
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

var _ Locator = seeders.SystemMounts{}

// imageDiskGUIDs are the configured disk GUIDs of published images, whose
// seeds are everyone's: the sector and the FAT seed both check them.
func imageDiskGUIDs(c config.Seed) ([]seeders.GUID, error) {
	var guids []seeders.GUID
	for _, s := range c.Sector.ImageDiskGUIDs {
		g, err := seeders.ParseGUID(s)
		if err != nil {
			return nil, fmt.Errorf("image disk GUID %q: %w", s, err)
		}
		guids = append(guids, g)
	}
	return guids, nil
}

func sectorBackend(c config.Seed, locate Locator) (seeders.SectorBackend, error) {
	b := seeders.SectorBackend{Path: c.Sector.Device, LBA: c.Sector.LBA}
	if c.Sector.LegacySector == "mix" {
		b.Foreign = seeders.ForeignMix
	}
	images, err := imageDiskGUIDs(c)
	if err != nil {
		return b, err
	}
	b.ImageDiskGUIDs = images
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

// DefaultGrace is how long a run still waits, after its deadline, for the
// backend it is running: it may be between remounting the boot medium
// read-write and back, and leaving it read-write is worse than being late.
const DefaultGrace = 10 * time.Second

// run runs action (seeders.ActionLoad, SeedRefresh or SeedSave) on each
// backend in turn, each bounded by ctx and the grace period: a backend
// still running then is reported as timed out and left behind, and the
// backends after it are not tried. OncePerBoot backends take no part in
// saves. Backends may credit only until the deadline: a backend that
// finishes later, in the grace period or left behind, mixes at most.
// The caller unlocks the seeds only after run returned.
func (r *Runner) run(ctx context.Context, backends []Backend, action string) []seeders.Result {
	token := &creditToken{run: ctx}
	defer token.revoke()
	k := Kernel{Pool: r.Pool, token: token}
	var out []seeders.Result
	for _, b := range backends {
		if b.OncePerBoot && action == seeders.ActionSave {
			continue
		}
		if ctx.Err() != nil {
			out = append(out, seeders.Result{Backend: b.Name(), Action: action, Reason: "not tried: " + ErrTimeout.Error(), Error: ErrTimeout.Error()})
			continue
		}
		done := make(chan seeders.Result, 1)
		go func() { done <- runOne(b, k, action) }()
		select {
		case res := <-done:
			out = append(out, res)
			continue
		case <-ctx.Done():
			token.revoke()
		}
		select {
		case res := <-done:
			out = append(out, res)
		case <-time.After(r.grace()):
			out = append(out, seeders.Result{Backend: b.Name(), Action: action, Reason: "not finished: " + ErrTimeout.Error(), Error: ErrTimeout.Error()})
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
		res.Action = action
	}()
	s := seeders.Seeder{Backend: b.Backend, Kernel: k, WearRewrites: b.WearRewrites, WearRewritesDue: b.WearRewritesDue}
	if action == seeders.ActionLoad {
		return s.Seed()
	}
	return s.Refresh()
}

// PlanRefresh is what the refresh once the gate is open writes, given
// what this boot's load did (prior, the load's results): OncePerBoot
// backends only if the load did not write them, with their wear-levelling
// rewrites if the load left them due.
func PlanRefresh(backends []Backend, prior []seeders.Result) []Backend {
	var out []Backend
	for _, b := range backends {
		loaded := func(s seeders.Result) bool { return s.Backend == b.Name() && s.Action == seeders.ActionLoad }
		if b.OncePerBoot && slices.ContainsFunc(prior, func(s seeders.Result) bool { return loaded(s) && s.Refreshed }) {
			continue
		}
		b.WearRewritesDue = slices.ContainsFunc(prior, func(s seeders.Result) bool { return loaded(s) && s.WearRewritesDue })
		out = append(out, b)
	}
	return out
}
