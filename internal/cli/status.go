// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
)

// Status is `entropy-gate status --json`: the persistent storage
// assistant's precondition check. Fields are only ever added.
type Status struct {
	// Ready is the gate's rule applied now: CRNG initialized and
	// entropy_avail at or above the threshold.
	Ready           bool   `json:"ready"`
	CRNGInitialized bool   `json:"crng_initialized"`
	CRNGReason      string `json:"crng_reason,omitempty"`
	// EntropyAvail, PoolSize are the kernel's numbers in bits, -1 when
	// unknown.
	EntropyAvail int `json:"entropy_avail"`
	PoolSize     int `json:"poolsize"`
	// Threshold is the configured threshold after clamping to the pool.
	Threshold int    `json:"threshold"`
	Semantics string `json:"semantics"`
	Gate      Gate   `json:"gate"`
	// HWRNG is the kernel's hardware RNG: device, current source, and
	// the quality the kernel credits it at.
	HWRNG doctor.HWRNG `json:"hwrng"`
}

// Gate is the gate service's state, from its state file.
type Gate struct {
	// State is a gatestate.Phase, or gatestate.NotRun ("not-run") without
	// a state file, or gatestate.Unknown ("unknown") when the file cannot
	// be read.
	State    string `json:"state"`
	WaitedMS int64  `json:"waited_ms"`
	Outcome  string `json:"outcome,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func readStatus(env Env, threshold int, logger *logging.Logger) Status {
	v := gatestate.ReadView(env.Pool, env.StatePath, threshold)
	if v.KernelErr != nil {
		logger.Warningf("%v", v.KernelErr)
	}
	if err := v.StateFileProblem(); err != nil {
		logger.Warningf("%v", err)
	}
	st := Status{
		Ready:           v.Ready(),
		CRNGInitialized: v.CRNGInitialized(),
		EntropyAvail:    v.Kernel.EntropyAvail,
		PoolSize:        v.Kernel.PoolSize,
		Threshold:       v.Threshold,
		Semantics:       v.Kernel.Semantics.String(),
		Gate:            Gate{State: v.GateState()},
		HWRNG:           doctor.ReadHWRNG(env.Doctor),
	}
	if v.ReadinessErr != nil {
		st.CRNGReason = v.ReadinessErr.Error()
	}
	if v.GateErr == nil {
		st.Gate.WaitedMS, st.Gate.Outcome, st.Gate.Reason = v.Gate.WaitedMS, string(v.Gate.Outcome), v.Gate.Reason
	}
	return st
}

func runStatus(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	tr := env.tr()
	asJSON := fs.Bool("json", false, tr.G("print one JSON object (stable fields: ready, crng_initialized, entropy_avail, poolsize, threshold, semantics, gate)"))
	file := configFlag(fs, tr)
	if err := parseFlags(env, fs, "status", tr.G("Show whether the kernel's random number generator is ready, and the gate's state.\nExit 0 when ready, 1 when not, 2 on errors."), args); err != nil {
		return exitFor(err)
	}
	logger := newLogger(env.Stderr)
	c, _ := loadConfig(env, *file, logger)
	st := readStatus(env, c.Threshold, logger)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		if err := enc.Encode(st); err != nil {
			return ExitUsage
		}
	} else {
		writeStatus(env.Stdout, st, tr)
	}
	if st.Ready {
		return ExitOK
	}
	return ExitNotReady
}

func yesNo(b bool, tr *i18n.Translator) string {
	if b {
		return tr.G("yes")
	}
	return tr.G("no")
}

func bitsText(n int, tr *i18n.Translator) string {
	if n < 0 {
		return tr.G("unknown")
	}
	return tr.N("%d bit", "%d bits", n, n)
}

// writeStatus prints the status for a person, labels aligned in any
// language.
func writeStatus(w io.Writer, st Status, tr *i18n.Translator) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, value string) { fmt.Fprintf(tw, "%s\t%s\n", label, value) }
	row(tr.G("Ready:"), yesNo(st.Ready, tr))
	crng := tr.G("initialized")
	if !st.CRNGInitialized {
		crng = tr.G("not initialized")
		if st.CRNGReason != "" {
			crng = tr.G("unknown: %s", st.CRNGReason)
		}
	}
	row(tr.G("CRNG:"), crng)
	// TRANSLATORS: both values are bit counts, e.g. "12 bits".
	row(tr.G("Entropy:"), tr.G("%[1]s (threshold %[2]s)", bitsText(st.EntropyAvail, tr), bitsText(st.Threshold, tr)))
	// TRANSLATORS: %[2]s is "legacy", "modern" or "unknown".
	row(tr.G("Pool:"), tr.G("%[1]s, %[2]s semantics", bitsText(st.PoolSize, tr), st.Semantics))
	g := st.Gate.State
	waited := time.Duration(st.Gate.WaitedMS) * time.Millisecond
	switch st.Gate.State {
	case gatestate.NotRun:
		g = tr.G("has not run this boot")
	case string(gatestate.Waiting):
		g = tr.G("waiting for %s", waited)
	case string(gatestate.Open):
		if st.Gate.Outcome == string(gatestate.Timeout) {
			g = tr.G("opened by timeout after %s", waited)
		} else {
			g = tr.G("open after %s", waited)
		}
	case string(gatestate.TimedOut):
		g = tr.G("timed out after %s: dependent services were not started", waited)
	case string(gatestate.Stopped):
		g = tr.G("stopped after %s", waited)
	}
	if st.Gate.Reason != "" {
		g += ": " + st.Gate.Reason
	}
	row(tr.G("Gate:"), g)
	row(tr.G("Hardware RNG:"), hwrngText(st.HWRNG, tr))
	tw.Flush()
}
