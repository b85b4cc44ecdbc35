package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
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
}

// Gate is the gate service's state, from its state file.
type Gate struct {
	// State is a gatestate.Phase, or "not-run" without a state file, or
	// "unknown" when the file cannot be read.
	State    string `json:"state"`
	WaitedMS int64  `json:"waited_ms"`
	Outcome  string `json:"outcome,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// statusNotRun and statusUnknown are Gate.State without a usable file.
const (
	statusNotRun  = "not-run"
	statusUnknown = "unknown"
)

func readStatus(env Env, threshold int, logger *log.Logger) Status {
	r, rErr := env.Pool.Ready()
	s, sErr := env.Pool.State()
	if sErr != nil {
		logger.Printf("warning: %v", sErr)
	}
	t, _ := gate.EffectiveThreshold(threshold, s)
	st := Status{
		CRNGInitialized: r == pool.Ready,
		EntropyAvail:    s.EntropyAvail,
		PoolSize:        s.PoolSize,
		Threshold:       t,
		Semantics:       s.Semantics.String(),
	}
	if rErr != nil {
		st.CRNGReason = rErr.Error()
	}
	st.Ready = gate.Opens(st.CRNGInitialized, st.EntropyAvail, st.Threshold)

	gs, err := gatestate.Read(env.StatePath)
	switch {
	case errors.Is(err, gatestate.ErrNotRun):
		st.Gate.State = statusNotRun
	case err != nil:
		logger.Printf("warning: %v", err)
		st.Gate.State = statusUnknown
	default:
		st.Gate = Gate{State: string(gs.Phase), WaitedMS: gs.WaitedMS, Outcome: string(gs.Outcome), Reason: gs.Reason}
	}
	return st
}

func runStatus(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object (stable fields: ready, crng_initialized, entropy_avail, poolsize, threshold, semantics, gate)")
	file := configFlag(fs)
	if err := parseFlags(env, fs, "status", "Show whether the kernel's random number generator is ready, and the gate's state.\nExit 0 when ready, 1 when not, 2 on errors.", args); err != nil {
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
		writeStatus(env.Stdout, st)
	}
	if st.Ready {
		return ExitOK
	}
	return ExitNotReady
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func bitsText(n int) string {
	if n < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d bits", n)
}

func writeStatus(w io.Writer, st Status) {
	var b strings.Builder
	fmt.Fprintf(&b, "Ready:            %s\n", yesNo(st.Ready))
	crng := "initialized"
	if !st.CRNGInitialized {
		crng = "not initialized"
		if st.CRNGReason != "" {
			crng = "unknown: " + st.CRNGReason
		}
	}
	fmt.Fprintf(&b, "CRNG:             %s\n", crng)
	fmt.Fprintf(&b, "Entropy:          %s (threshold %s)\n", bitsText(st.EntropyAvail), bitsText(st.Threshold))
	fmt.Fprintf(&b, "Pool:             %s, %s semantics\n", bitsText(st.PoolSize), st.Semantics)
	g := st.Gate.State
	switch st.Gate.State {
	case statusNotRun:
		g = "has not run this boot"
	case string(gatestate.Open), string(gatestate.TimedOut), string(gatestate.Stopped):
		g = fmt.Sprintf("%s (%s) after %s", st.Gate.State, st.Gate.Outcome, time.Duration(st.Gate.WaitedMS)*time.Millisecond)
	}
	if st.Gate.Reason != "" {
		g += ": " + st.Gate.Reason
	}
	fmt.Fprintf(&b, "Gate:             %s\n", g)
	io.WriteString(w, b.String())
}
