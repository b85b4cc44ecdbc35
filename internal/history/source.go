// SPDX-License-Identifier: GPL-3.0-or-later

package history

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// Sources of readiness, as Record.ReadyBy names them.
const (
	BySeed    = "seed"
	ByHWRNG   = "hwrng"
	ByCPU     = "cpu"
	ByJitter  = "jitter"
	ByEntropy = "entropy"
	ByAlready = "already"
	ByTimeout = "timeout"
	ByStopped = "stopped"
)

// Sources says what could have made the pool ready this boot.
type Sources struct {
	// InitializedAtStart: the CRNG was ready before the gate (and its
	// seeds) started.
	InitializedAtStart bool
	SeedsLoaded        int
	SeedsCredited      int
	// HWRNGCredited: a hardware RNG the kernel credits is present.
	HWRNGCredited bool
	// CPUCredited: RDRAND is present and random.trust_cpu is on.
	CPUCredited bool
	// Active: the gate waited actively, making the kernel gather jitter.
	Active bool
}

// ReadyBy names the most likely reason the pool became ready. It is an
// inference from what was present, not a measurement: the kernel does not
// say which source completed its initialization.
func ReadyBy(outcome string, s Sources) string {
	switch {
	case outcome == "timed-out":
		return ByTimeout
	case outcome == "cancelled":
		return ByStopped
	case !s.InitializedAtStart && s.SeedsCredited > 0:
		return BySeed
	case s.HWRNGCredited:
		return ByHWRNG
	case s.CPUCredited:
		return ByCPU
	case s.InitializedAtStart:
		return ByAlready
	case s.Active:
		return ByJitter
	default:
		return ByEntropy
	}
}

// MessageID marks the gate's end-of-wait journal entries (gate.MessageID).
const MessageID = "a5a4b28754a34a7395465a3846f60945"

// Journal field names of the end-of-wait entry that a Record is made of.
const (
	FieldOutcome           = "ENTROPY_GATE_OUTCOME"
	FieldWaitUsec          = "ENTROPY_GATE_WAIT_USEC"
	FieldEntropyAvailStart = "ENTROPY_GATE_ENTROPY_AVAIL_START"
	FieldEntropyAvailEnd   = "ENTROPY_GATE_ENTROPY_AVAIL_END"
	FieldThreshold         = "ENTROPY_GATE_THRESHOLD"
	FieldMode              = "ENTROPY_GATE_MODE"
	FieldSemantics         = "ENTROPY_GATE_SEMANTICS"
	FieldKernel            = "ENTROPY_GATE_KERNEL"
	FieldReadyBy           = "ENTROPY_GATE_READY_BY"
	FieldSeedsLoaded       = "ENTROPY_GATE_SEEDS_LOADED"
	FieldSeedsCredited     = "ENTROPY_GATE_SEEDS_CREDITED"
)

// FromJournal reads `journalctl -o json` output of the gate's end-of-wait
// entries, skipping (and counting) lines that are not such an entry.
func FromJournal(b []byte) (records []Record, skipped int) {
	lines := bufio.NewScanner(bytes.NewReader(b))
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		if len(bytes.TrimSpace(lines.Bytes())) == 0 {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
			skipped++
			continue
		}
		str := func(k string) string { s, _ := e[k].(string); return s }
		num := func(k string) int64 {
			n, err := strconv.ParseInt(str(k), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
		usec := num("__REALTIME_TIMESTAMP")
		if str("MESSAGE_ID") != MessageID || usec <= 0 || str(FieldOutcome) == "" || num(FieldWaitUsec) < 0 {
			skipped++
			continue
		}
		records = append(records, Record{
			Time:              time.UnixMicro(usec).UTC(),
			BootID:            str("_BOOT_ID"),
			Kernel:            str(FieldKernel),
			Semantics:         str(FieldSemantics),
			Mode:              str(FieldMode),
			Threshold:         int(num(FieldThreshold)),
			Outcome:           str(FieldOutcome),
			WaitedMS:          num(FieldWaitUsec) / 1000,
			ReadyBy:           str(FieldReadyBy),
			EntropyAvailStart: int(num(FieldEntropyAvailStart)),
			EntropyAvailEnd:   int(num(FieldEntropyAvailEnd)),
			SeedsLoaded:       int(max(num(FieldSeedsLoaded), 0)),
			SeedsCredited:     int(max(num(FieldSeedsCredited), 0)),
		})
	}
	return records, skipped
}

// ReadJournal asks journalctl for the gate's entries of every boot the
// journal keeps. It is for systems without a history file, such as an
// amnesic live system during its one session.
func ReadJournal(ctx context.Context) ([]Record, int, error) {
	out, err := exec.CommandContext(ctx, "journalctl", "--no-pager", "-o", "json", "MESSAGE_ID="+MessageID).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("read journal: %w", err)
	}
	records, skipped := FromJournal(out)
	return records, skipped, nil
}
