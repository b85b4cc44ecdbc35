// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
)

// reportJSON is `entropy-gate report --json`.
type reportJSON struct {
	Source  string           `json:"source"`
	Stats   history.Stats    `json:"stats"`
	Skipped int              `json:"skipped"`
	Boots   []history.Record `json:"boots"`
}

// loadHistory reads the history file, or the journal where there is none.
func loadHistory(ctx context.Context, env Env) (records []history.Record, skipped int, source string, err error) {
	records, skipped, err = history.Read(env.HistoryPath)
	if err != nil || len(records) > 0 || env.ReadJournal == nil {
		return records, skipped, env.HistoryPath, err
	}
	records, skipped, err = env.ReadJournal(ctx)
	return records, skipped, "journal", err
}

func runReport(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	tr := env.tr()
	asJSON := fs.Bool("json", false, tr.G("print one JSON object: statistics and every boot"))
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	svg := fs.String("svg", "", tr.G("also draw the wait of each boot as an SVG chart into `FILE`"))
	// TRANSLATORS: keep `N` in backquotes: it names the argument.
	limit := fs.Int("limit", 20, tr.G("show the last `N` boots in the table (statistics cover all)"))
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	historyFile := fs.String("history", "", tr.G("read the boots from `FILE` (e.g. copied from another machine) instead of this system's history"))
	if err := parseFlags(env, fs, "report", tr.G("Show how long past boots waited for the random number generator, and why\nthey stopped waiting. Reads the history file, or the journal where there is none."), args); err != nil {
		return exitFor(err)
	}
	if *historyFile != "" {
		env.HistoryPath, env.ReadJournal = *historyFile, nil
	}
	records, skipped, source, err := loadHistory(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "entropy-gate report: %v\n", err)
		return ExitUsage
	}
	if skipped > 0 {
		fmt.Fprintf(env.Stderr, "entropy-gate report: %s\n", tr.N("skipped %d unreadable record", "skipped %d unreadable records", skipped, skipped))
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err == nil {
			err = history.WriteSVG(f, records, tr.G("Wait for the kernel random number generator, per boot"))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "entropy-gate report: %v\n", err)
			return ExitUsage
		}
	}
	stats := history.Summarize(records)
	if *asJSON {
		out := reportJSON{Source: source, Stats: stats, Skipped: skipped, Boots: records}
		if out.Boots == nil {
			out.Boots = []history.Record{}
		}
		if err := json.NewEncoder(env.Stdout).Encode(out); err != nil {
			return ExitUsage
		}
		return ExitOK
	}
	writeReport(env.Stdout, records, stats, max(*limit, 0), tr)
	return ExitOK
}

func seconds(ms int64) string { return fmt.Sprintf("%.2f s", float64(ms)/1000) }

func writeReport(w io.Writer, records []history.Record, stats history.Stats, limit int, tr *i18n.Translator) {
	if len(records) == 0 {
		fmt.Fprintln(w, tr.G("No boots recorded yet."))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// TRANSLATORS: column headings of the boot table.
	fmt.Fprintln(tw, tr.G("Boot\tKernel\tSemantics\tMode\tSeeds loaded/credited\tWait\tReady by"))
	for _, r := range records[max(0, len(records)-limit):] {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.Kernel, r.Semantics, r.Mode,
			r.SeedsLoaded, r.SeedsCredited, seconds(r.WaitedMS), r.ReadyBy)
	}
	tw.Flush()
	// TRANSLATORS: %[1]d boots; then median, 90th percentile and longest wait, e.g. "1.02 s".
	fmt.Fprintln(w, tr.N("%[1]d boot: median wait %[2]s, 90th percentile %[3]s, longest %[4]s.", "%[1]d boots: median wait %[2]s, 90th percentile %[3]s, longest %[4]s.",
		stats.Boots, stats.Boots, seconds(stats.MedianMS), seconds(stats.P90MS), seconds(stats.MaxMS)))
	if stats.TimedOut > 0 {
		fmt.Fprintln(w, tr.N("%d boot timed out.", "%d boots timed out.", stats.TimedOut, stats.TimedOut))
	}
}
