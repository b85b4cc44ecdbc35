// SPDX-License-Identifier: GPL-3.0-or-later

package doctor

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func fixture(name string, p pool.Pool) Sources {
	root := filepath.Join("testdata", name)
	return Sources{Roots: pool.Roots{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev")}, StatePath: filepath.Join(root, "state.json"), Pool: p}
}

func fakePool(semantics pool.Semantics, ready bool) *pool.Fake {
	size := 256
	if semantics == pool.Legacy {
		size = 4096
	}
	f := pool.NewFake(pool.State{EntropyAvail: 5, PoolSize: size, Semantics: semantics})
	if ready {
		f.SetReady()
	}
	return f
}

func ids(findings []Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, f.ID)
	}
	return out
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name       string
		fixture    string
		pool       *pool.Fake
		want       []string
		notWant    []string
		wantAdvice bool
	}{
		{
			name:       "QEMU guest without virtio-rng, RDRAND off, waiting",
			fixture:    "qemu",
			pool:       fakePool(pool.Modern, false),
			want:       []string{"crng-not-initialized", "semantics-modern", "no-cpu-rng", "vm-no-virtio-rng", "no-vmgenid", "haveged-stalls", "bootloader-seed-distrusted"},
			wantAdvice: true,
		},
		{
			name:       "QEMU guest with virtio-rng",
			fixture:    "qemu-virtio-rng",
			pool:       fakePool(pool.Modern, true),
			want:       []string{"crng-initialized", "hwrng-credited", "vm-virtio-rng", "vmgenid", "cpu-rng-default"},
			notWant:    []string{"vm-no-virtio-rng", "crng-not-initialized"},
			wantAdvice: false,
		},
		{
			name:       "VirtualBox has no virtio-rng",
			fixture:    "virtualbox",
			pool:       fakePool(pool.Modern, true),
			want:       []string{"vm-virtualbox"},
			notWant:    []string{"vm-no-virtio-rng"},
			wantAdvice: true,
		},
		{
			name:       "old-pool laptop, uncredited TPM RNG, RDRAND distrusted",
			fixture:    "laptop-old-kernel",
			pool:       fakePool(pool.Legacy, true),
			want:       []string{"semantics-legacy", "hwrng-uncredited", "cpu-rng-distrusted", "rngd"},
			notWant:    []string{"vmgenid", "no-vmgenid", "vm-unknown"},
			wantAdvice: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings := Diagnose(Gather(fixture(tt.fixture, tt.pool)), i18n.English)
			got := ids(findings)
			for _, id := range tt.want {
				if !slices.Contains(got, id) {
					t.Errorf("no finding %q in %q", id, got)
				}
			}
			for _, id := range tt.notWant {
				if slices.Contains(got, id) {
					t.Errorf("unexpected finding %q", id)
				}
			}
			if HasAdvice(findings) != tt.wantAdvice {
				t.Errorf("HasAdvice = %v, want %v (%q)", HasAdvice(findings), tt.wantAdvice, got)
			}
			for _, f := range findings {
				if f.Level == Advice && f.Advice == "" {
					t.Errorf("finding %s asks for action but gives no advice", f.ID)
				}
			}
		})
	}
}

func TestGatherFacts(t *testing.T) {
	f := Gather(fixture("qemu-virtio-rng", fakePool(pool.Modern, true)))
	if f.Hypervisor != "QEMU" || !f.VMGenID || !f.RDRAND || !f.RDSEED || !f.HWRNG.Device || f.HWRNG.Quality != 1000 || f.HWRNG.Current != "virtio_rng.0" {
		t.Errorf("facts = %+v", f)
	}
	old := Gather(fixture("laptop-old-kernel", fakePool(pool.Legacy, true)))
	if old.HWRNG.Quality != 0 || old.TrustCPU != "off" || old.Hypervisor != "" || !slices.Equal(old.Daemons, []string{"rngd"}) {
		t.Errorf("facts = %+v", old)
	}
	none := Gather(fixture("does-not-exist", fakePool(pool.SemanticsUnknown, false)))
	if none.Hypervisor != "" || none.HWRNG.Quality != -1 || none.CRNGInitMS != -1 || len(none.Daemons) != 0 {
		t.Errorf("missing trees must give unknowns: %+v", none)
	}
}

func TestGateTimeoutIsAdvice(t *testing.T) {
	f := Facts{CRNGInitialized: true, CRNGInitMS: -1, Gate: &gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Timeout, WaitedMS: 120000}}
	findings := Diagnose(f, i18n.English)
	if !slices.Contains(ids(findings), "gate-timed-out") || !HasAdvice(findings) {
		t.Errorf("findings = %q", ids(findings))
	}
}

func TestParseCRNGInit(t *testing.T) {
	tests := []struct {
		record string
		want   int64
		ok     bool
	}{
		{record: "5,523,137850,-;random: crng init done", want: 137, ok: true},
		{record: "5,523,1837850,-;random: crng init done\n", want: 1837, ok: true},
		{record: "5,522,100,-;random: fast init done", ok: false},
		{record: "garbage", ok: false},
		{record: "5,x,y;random: crng init done", ok: false},
	}
	for _, tt := range tests {
		got, ok := parseCRNGInit(tt.record)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseCRNGInit(%q) = %d, %v; want %d, %v", tt.record, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFindingsTranslated(t *testing.T) {
	pseudo := i18n.Find([]string{i18n.Pseudo}, "")
	for _, name := range []string{"qemu", "qemu-virtio-rng", "virtualbox", "laptop-old-kernel"} {
		for _, f := range Diagnose(Gather(fixture(name, fakePool(pool.Legacy, false))), pseudo) {
			for _, text := range []string{f.Message, f.Advice} {
				if text != "" && !(strings.HasPrefix(text, "⟦") && strings.HasSuffix(text, "⟧")) {
					t.Errorf("%s: untranslated %q", f.ID, text)
				}
			}
		}
	}
}

func FuzzParseCRNGInit(f *testing.F) {
	f.Add("5,523,137850,-;random: crng init done")
	f.Fuzz(func(t *testing.T, record string) {
		if ms, ok := parseCRNGInit(record); ok && ms < 0 {
			t.Errorf("negative time %d from %q", ms, record)
		}
	})
}

func TestSeedFindings(t *testing.T) {
	tests := []struct {
		name  string
		seeds []seeders.Result
		want  []string
	}{
		{name: "none configured", seeds: nil, want: []string{"no-seed"}},
		{name: "credited and refreshed", seeds: []seeders.Result{
			{Backend: "sector:/dev/sda@34", Action: seeders.ActionLoad, CreditedBits: 256, Refreshed: true},
			{Backend: "sector:/dev/sda@34", Action: seeders.ActionRefresh, Refreshed: true},
		}, want: []string{"seed-credited"}},
		{name: "first boot: saved for the next", seeds: []seeders.Result{
			{Backend: "file:/s", Action: seeders.ActionLoad, Refreshed: true},
		}, want: []string{"seed-saved"}},
		{name: "refresh failed after a credit", seeds: []seeders.Result{
			{Backend: "sector:/dev/sda@34", Action: seeders.ActionLoad, CreditedBits: 256, Refreshed: true},
			{Backend: "sector:/dev/sda@34", Action: seeders.ActionRefresh, Error: "store replacement: input/output error"},
		}, want: []string{"seed-failed"}},
		{name: "read-only medium", seeds: []seeders.Result{
			{Backend: "sector:/dev/sr0@34", Action: seeders.ActionLoad, Mixed: true, Reason: "mixed, not credited: read-only medium"},
		}, want: []string{"seed-unused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(seedFindings(&gatestate.State{Seeds: tt.seeds}, i18n.English))
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings = %q, want %q", got, tt.want)
			}
		})
	}
	if seedFindings(nil, i18n.English) != nil {
		t.Error("findings without a gate state")
	}
}
