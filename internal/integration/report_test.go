// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"encoding/json"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// reportOf parses the JSON a `report --json` step printed.
type reportOf struct {
	Source string `json:"source"`
	Stats  struct {
		Boots    int `json:"boots"`
		TimedOut int `json:"timed_out"`
	} `json:"stats"`
	Skipped int `json:"skipped"`
	Boots   []struct {
		Kernel    string `json:"kernel"`
		Semantics string `json:"semantics"`
		Mode      string `json:"mode"`
		Outcome   string `json:"outcome"`
		WaitedMS  int64  `json:"waited_ms"`
		ReadyBy   string `json:"ready_by"`
	} `json:"boots"`
}

// doctorOf parses the JSON a `doctor --json` step printed.
type doctorOf struct {
	Verdict string `json:"verdict"`
	Facts   struct {
		CRNGInitialized bool   `json:"crng_initialized"`
		CRNGInitMS      int64  `json:"crng_init_ms"`
		Hypervisor      string `json:"hypervisor"`
		HWRNG           struct {
			Current string `json:"current"`
		} `json:"hwrng"`
	} `json:"facts"`
	Findings []struct {
		ID    string `json:"id"`
		Level string `json:"level"`
	} `json:"findings"`
}

// jsonAt parses the last line a step printed into v.
func jsonAt(t *testing.T, res *vmtest.Result, step int, v any) {
	t.Helper()
	out := res.Output(step)
	if len(out) == 0 || json.Unmarshal([]byte(out[len(out)-1]), v) != nil {
		t.Fatalf("step %d printed %q, not the JSON wanted", step, out)
	}
}

// level returns a finding's level, "" if doctor did not report it.
func (d doctorOf) level(id string) string {
	for _, f := range d.Findings {
		if f.ID == id {
			return f.Level
		}
	}
	return ""
}

// TestReportAndDoctorOnRealKernel runs report and doctor in a guest that
// has no journal: report must read the history file the gate wrote, and
// doctor must recognise QEMU and whether it gave the guest a virtio-rng.
func TestReportAndDoctorOnRealKernel(t *testing.T) {
	g := newGuest(t)

	t.Run("no virtio-rng: two waits recorded, advice to add one", func(t *testing.T) {
		res := g.boot(t, vmtest.Config{Script: `
			write /tmp/passive.conf "[Gate]\nMode=passive\nTimeout=1s\nOnTimeout=fail\n"
			run /bin/entropy-gate run --config /tmp/passive.conf
			write /tmp/active.conf "[Gate]\nMode=active\nTimeout=1min\n"
			run /bin/entropy-gate run --config /tmp/active.conf
			run /bin/entropy-gate report --json
			run /bin/entropy-gate report
			run /bin/entropy-gate doctor --json
		`})
		for step, want := range map[int]int{2: 1, 4: 0} {
			if code := exitCode(t, res, step); code != want {
				t.Fatalf("gate step %d: exit %d, want %d\n%s", step, code, want, res.Timeline())
			}
		}

		if code := exitCode(t, res, 5); code != 0 {
			t.Errorf("report --json: exit %d", code)
		}
		var rep reportOf
		jsonAt(t, res, 5, &rep)
		if rep.Source != "/var/lib/entropy-gate/history.jsonl" || rep.Skipped != 0 {
			t.Errorf("report read %q (%d skipped), want the history file", rep.Source, rep.Skipped)
		}
		if rep.Stats.Boots != 2 || rep.Stats.TimedOut != 1 || len(rep.Boots) != 2 {
			t.Fatalf("report = %+v, want the two runs, one timed out", rep)
		}
		timedOut, jitter := rep.Boots[0], rep.Boots[1]
		if timedOut.Outcome != "timed-out" || timedOut.ReadyBy != "timeout" || timedOut.Mode != "passive" || timedOut.WaitedMS < 1000 {
			t.Errorf("first run = %+v, want a passive timeout after 1 s", timedOut)
		}
		if jitter.Outcome != "ready" || jitter.ReadyBy != "jitter" || jitter.Mode != "active" || jitter.WaitedMS <= 0 {
			t.Errorf("second run = %+v, want ready by the active wait's jitter", jitter)
		}
		if jitter.Kernel == "" || jitter.Semantics != "modern" {
			t.Errorf("record = %+v, want the guest's kernel and modern semantics", jitter)
		}
		if !outputHas(res, 6, "2 boots: median wait") || !outputHas(res, 6, "1 boot timed out.") {
			t.Errorf("report table: %q", res.Output(6))
		}

		if code := exitCode(t, res, 7); code != 1 {
			t.Errorf("doctor without virtio-rng: exit %d, want 1 (advice)", code)
		}
		var doc doctorOf
		jsonAt(t, res, 7, &doc)
		if doc.Verdict != "advice" || doc.Facts.Hypervisor != "QEMU" || !doc.Facts.CRNGInitialized {
			t.Errorf("doctor: verdict %q, hypervisor %q, CRNG initialized %v; want advice, QEMU, true",
				doc.Verdict, doc.Facts.Hypervisor, doc.Facts.CRNGInitialized)
		}
		if got := doc.level("vm-no-virtio-rng"); got != "advice" {
			t.Errorf("vm-no-virtio-rng: level %q, want advice; findings %+v", got, doc.Findings)
		}
		if got := doc.level("crng-not-initialized"); got != "" {
			t.Errorf("crng-not-initialized reported after the active wait: %q", got)
		}
	})

	t.Run("virtio-rng: ready by the hardware RNG, nothing to advise", func(t *testing.T) {
		res := g.boot(t, vmtest.Config{VirtioRNG: true, Script: `
			write /tmp/passive.conf "[Gate]\nMode=passive\nTimeout=1min\n"
			run /bin/entropy-gate run --config /tmp/passive.conf
			run /bin/entropy-gate report --json
			run /bin/entropy-gate doctor --json
		`})
		var rep reportOf
		jsonAt(t, res, 3, &rep)
		if len(rep.Boots) != 1 || rep.Boots[0].Outcome != "ready" || rep.Boots[0].ReadyBy != "hwrng" {
			t.Errorf("report = %+v, want one boot ready by the hardware RNG", rep)
		}

		if code := exitCode(t, res, 4); code != 0 {
			t.Errorf("doctor with virtio-rng: exit %d, want 0\n%q", code, res.Output(4))
		}
		var doc doctorOf
		jsonAt(t, res, 4, &doc)
		if doc.Verdict != "fine" || doc.Facts.Hypervisor != "QEMU" || doc.Facts.HWRNG.Current != "virtio_rng.0" {
			t.Errorf("doctor: verdict %q, hypervisor %q, hwrng %q; want fine, QEMU, virtio_rng.0",
				doc.Verdict, doc.Facts.Hypervisor, doc.Facts.HWRNG.Current)
		}
		for _, id := range []string{"vm-virtio-rng", "hwrng-credited", "crng-initialized"} {
			if got := doc.level(id); got != "ok" {
				t.Errorf("%s: level %q, want ok; findings %+v", id, got, doc.Findings)
			}
		}
		// The kernel log is readable in the guest: the CRNG initialized
		// when the virtio-rng driver came up, before the gate started.
		if doc.Facts.CRNGInitMS <= 0 {
			t.Errorf("crng_init_ms = %d, want the time from the kernel log", doc.Facts.CRNGInitMS)
		}
	})
}
