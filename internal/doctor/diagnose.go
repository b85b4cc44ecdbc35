// SPDX-License-Identifier: GPL-3.0-or-later

package doctor

import (
	"slices"
	"strings"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Level says how much a finding matters.
type Level string

// Levels: a source that works, context worth knowing, something to do.
const (
	OK     Level = "ok"
	Info   Level = "info"
	Advice Level = "advice"
)

// Finding is one conclusion about the machine.
type Finding struct {
	// ID is stable, for scripts: e.g. "vm-no-virtio-rng".
	ID    string `json:"id"`
	Level Level  `json:"level"`
	// Message says what is, Advice what would help; both in the
	// translator's language.
	Message string `json:"message"`
	Advice  string `json:"advice,omitempty"`
}

// trusted reads a random.trust_*= value; unset means the kernel's
// default, which is "on" since 6.2 and a build option before.
func trusted(v string) (on, set bool) {
	switch strings.ToLower(v) {
	case "":
		return false, false
	case "1", "on", "y", "yes", "true":
		return true, true
	default:
		return false, true
	}
}

// HWRNGCredited reports a hardware RNG the kernel takes entropy from.
func (f Facts) HWRNGCredited() bool {
	return f.HWRNG.Current != "" && f.HWRNG.Current != "none" && f.HWRNG.Quality > 0
}

// CPUCredited reports RDRAND present and trusted on the command line.
func (f Facts) CPUCredited() bool {
	on, _ := trusted(f.TrustCPU)
	return f.RDRAND && on
}

// Diagnose turns facts into findings, most important first.
func Diagnose(f Facts, tr *i18n.Translator) []Finding {
	var out []Finding
	add := func(id string, level Level, message, advice string) {
		out = append(out, Finding{ID: id, Level: level, Message: message, Advice: advice})
	}

	switch {
	case !f.CRNGInitialized:
		add("crng-not-initialized", Advice, tr.G("The kernel's random number generator is not initialized yet: keys made now may be weak."),
			tr.G("Wait with `entropy-gate wait`; the other advice below makes it initialize sooner."))
	case f.CRNGInitMS >= 0:
		add("crng-initialized", OK, tr.G("The kernel's random number generator initialized %.1f s after boot.", float64(f.CRNGInitMS)/1000), "")
	default:
		add("crng-initialized", OK, tr.G("The kernel's random number generator is initialized."), "")
	}

	switch f.Semantics {
	case "legacy":
		add("semantics-legacy", Info, tr.G("This kernel counts entropy the old way (4096-bit pool, before 5.18): entropy_avail rises and falls."), "")
	case "modern":
		add("semantics-modern", Info, tr.G("This kernel counts entropy the modern way (256-bit pool, 5.18 and later): entropy_avail stays at 256 once initialized."), "")
	}

	hasVirtioRNG := slices.ContainsFunc(f.HWRNG.Available, func(s string) bool { return strings.HasPrefix(s, "virtio_rng") })
	switch {
	case f.HWRNGCredited():
		add("hwrng-credited", OK, tr.G("The hardware RNG %[1]s feeds the kernel, credited at quality %[2]d of 1024.", f.HWRNG.Current, f.HWRNG.Quality), "")
	case f.HWRNG.Current != "" && f.HWRNG.Current != "none":
		add("hwrng-uncredited", Advice, tr.G("The hardware RNG %s is present but the kernel does not credit it (quality 0, the default before Linux 6.2).", f.HWRNG.Current),
			tr.G("Boot with rng_core.default_quality=1024, or run rngd from rng-tools, to let it initialize the kernel."))
	}

	cpuOn, cpuSet := trusted(f.TrustCPU)
	switch {
	case !f.RDRAND:
		add("no-cpu-rng", Info, tr.G("The CPU has no RDRAND instruction (or the hypervisor hides it)."), "")
	case cpuOn:
		add("cpu-rng-trusted", OK, tr.G("The CPU's RDRAND is trusted (random.trust_cpu=%s): it initializes the kernel at boot.", f.TrustCPU), "")
	case cpuSet:
		add("cpu-rng-distrusted", Info, tr.G("The CPU's RDRAND is present but not trusted (random.trust_cpu=%s): it is mixed in without credit.", f.TrustCPU), "")
	default:
		add("cpu-rng-default", Info, tr.G("The CPU has RDRAND; whether the kernel trusts it is its build default (on since Linux 6.2)."), "")
	}
	if on, set := trusted(f.TrustBootloader); set {
		if on {
			add("bootloader-seed-trusted", Info, tr.G("Seeds from the bootloader (EFI, device tree) are credited (random.trust_bootloader=%s).", f.TrustBootloader), "")
		} else {
			add("bootloader-seed-distrusted", Info, tr.G("Seeds from the bootloader are mixed in without credit (random.trust_bootloader=%s).", f.TrustBootloader), "")
		}
	}

	switch f.Hypervisor {
	case "":
	case "VirtualBox":
		add("vm-virtualbox", Advice, tr.G("This is a VirtualBox virtual machine. VirtualBox offers no virtio-rng device."),
			tr.G("Rely on a seed on the boot medium and on the kernel's jitter entropy (Mode=active); do not expect a hardware RNG."))
	case "QEMU", "KVM":
		if !hasVirtioRNG {
			add("vm-no-virtio-rng", Advice, tr.G("This is a %s virtual machine without a virtio-rng device.", f.Hypervisor),
				tr.G("Give it one: QEMU -device virtio-rng-pci, or in libvirt <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>."))
		} else {
			add("vm-virtio-rng", OK, tr.G("This is a %s virtual machine with a virtio-rng device.", f.Hypervisor), "")
		}
	case "unknown":
		if hasVirtioRNG {
			add("vm-virtio-rng", OK, tr.G("This is a virtual machine with a virtio-rng device."), "")
		} else {
			add("vm-unknown", Info, tr.G("This is a virtual machine of an unknown hypervisor."), "")
		}
	default:
		add("vm-other", Info, tr.G("This is a %s virtual machine: check whether it can offer a virtio-rng device.", f.Hypervisor), "")
	}
	if f.Hypervisor != "" {
		if f.VMGenID {
			add("vmgenid", OK, tr.G("The hypervisor provides a VM generation ID: the kernel reseeds when a snapshot is restored or cloned."), "")
		} else {
			add("no-vmgenid", Info, tr.G("No VM generation ID: restoring a snapshot or cloning this machine repeats its random state until the kernel reseeds."), "")
		}
	}

	for _, d := range f.Daemons {
		switch d {
		case "haveged":
			switch {
			case f.Semantics == "modern" && !f.CRNGInitialized:
				// Measured (docs/boot-entropy.md): it credits whole bytes
				// of what is missing, stalls at 255 of 256 bits and spins.
				add("haveged-stalls", Advice, tr.G("haveged runs, but on this kernel it cannot finish initializing the random number generator by itself, and keeps the CPU busy meanwhile."),
					tr.G("Use the gate's active wait (Mode=active) or jitterentropy-rngd instead."))
			case f.Semantics == "modern":
				add("haveged-redundant", Info, tr.G("haveged runs; on this kernel it adds little: the kernel gathers jitter entropy itself."), "")
			default:
				add("haveged", Info, tr.G("haveged runs and credits timing jitter to the pool."), "")
			}
		case "rngd":
			if f.HWRNG.Current == "" || f.HWRNG.Current == "none" {
				add("rngd-idle", Info, tr.G("rngd runs, but with no hardware RNG it has little to feed the kernel."), "")
			} else {
				add("rngd", OK, tr.G("rngd runs and feeds the hardware RNG to the kernel."), "")
			}
		case "jitterentropy-rngd":
			add("jitterentropy-rngd", Info, tr.G("jitterentropy-rngd runs and credits CPU timing jitter to the pool."), "")
		}
	}

	out = append(out, seedFindings(f.Gate, tr)...)

	if g := f.Gate; g != nil && g.Outcome == gatestate.Timeout {
		add("gate-timed-out", Advice, tr.G("The gate timed out this boot after %.1f s: services that need strong randomness started degraded or not at all.", float64(g.WaitedMS)/1000),
			tr.G("Follow the other advice, or put a seed on the boot medium."))
	}
	return out
}

// seedFindings judges this boot's seed backends from the gate's state.
func seedFindings(g *gatestate.State, tr *i18n.Translator) []Finding {
	if g == nil {
		return nil
	}
	if len(g.Seeds) == 0 {
		return []Finding{{ID: "no-seed", Level: Info, Message: tr.G("No seed backend is enabled: every boot waits for the kernel's own entropy.")}}
	}
	// Each backend's latest result says whether its seed is being kept.
	latest := map[string]seeders.Result{}
	var order []string
	credited := map[string]bool{}
	for _, s := range g.Seeds {
		if _, seen := latest[s.Backend]; !seen {
			order = append(order, s.Backend)
		}
		latest[s.Backend] = s
		credited[s.Backend] = credited[s.Backend] || s.CreditedBits > 0
	}
	var out []Finding
	for _, name := range order {
		s := latest[name]
		switch {
		case s.Error != "":
			out = append(out, Finding{ID: "seed-failed", Level: Advice,
				Message: tr.G("The seed %[1]s could not be kept: %[2]s.", name, s.Error),
				Advice:  tr.G("Check that the boot medium is writable and its layout allows a seed (entropy-gate seed status).")})
		case credited[name]:
			out = append(out, Finding{ID: "seed-credited", Level: OK, Message: tr.G("The seed %s was credited this boot and replaced.", name)})
		case s.Refreshed:
			out = append(out, Finding{ID: "seed-saved", Level: OK, Message: tr.G("The seed %s was not credited this boot, but a new one is saved for the next.", name)})
		default:
			out = append(out, Finding{ID: "seed-unused", Level: Info, Message: tr.G("The seed %[1]s was not used: %[2]s.", name, s.Reason)})
		}
	}
	return out
}

// HasAdvice reports whether any finding asks for something to be done.
func HasAdvice(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Level == Advice })
}
