// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
)

// doctorReport is `entropy-gate doctor --json`. Messages are in English:
// machine output is never translated.
type doctorReport struct {
	// Verdict is "fine" or "advice".
	Verdict  string           `json:"verdict"`
	Facts    doctor.Facts     `json:"facts"`
	Findings []doctor.Finding `json:"findings"`
}

func runDoctor(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	tr := env.tr()
	asJSON := fs.Bool("json", false, tr.G("print one JSON object: verdict, facts and findings"))
	if err := parseFlags(env, fs, "doctor", tr.G("Explain this machine's randomness situation and what would help.\nExit 0 when all is fine, 1 when there is advice, 2 on errors."), args); err != nil {
		return exitFor(err)
	}
	src := env.Doctor
	src.Pool, src.StatePath = env.Pool, env.StatePath
	facts := doctor.Gather(src)
	if *asJSON {
		findings := doctor.Diagnose(facts, i18n.English)
		report := doctorReport{Verdict: "fine", Facts: facts, Findings: findings}
		if doctor.HasAdvice(findings) {
			report.Verdict = "advice"
		}
		if err := json.NewEncoder(env.Stdout).Encode(report); err != nil {
			return ExitUsage
		}
		return doctorExit(findings)
	}
	findings := doctor.Diagnose(facts, tr)
	writeFindings(env.Stdout, findings, tr)
	return doctorExit(findings)
}

func doctorExit(findings []doctor.Finding) int {
	if doctor.HasAdvice(findings) {
		return ExitNotReady
	}
	return ExitOK
}

// findingMarks show a finding's level at a glance, without colour.
var findingMarks = map[doctor.Level]string{doctor.OK: "✓", doctor.Info: "·", doctor.Advice: "!"}

func writeFindings(w io.Writer, findings []doctor.Finding, tr *i18n.Translator) {
	var b strings.Builder
	b.WriteString(tr.G("Randomness on this machine:") + "\n")
	for _, f := range findings {
		fmt.Fprintf(&b, "  %s %s\n", findingMarks[f.Level], f.Message)
		if f.Advice != "" {
			fmt.Fprintf(&b, "    → %s\n", f.Advice)
		}
	}
	if doctor.HasAdvice(findings) {
		b.WriteString(tr.G("Something would help: see the lines marked !") + "\n")
	} else {
		b.WriteString(tr.G("All is well.") + "\n")
	}
	io.WriteString(w, b.String())
}
