// SPDX-License-Identifier: GPL-3.0-or-later

package history

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSkipsCorruptLines(t *testing.T) {
	records, skipped, err := Read("testdata/history.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 5 || skipped != 3 {
		t.Fatalf("got %d records and %d skipped lines, want 5 and 3 (torn, garbage, no time)", len(records), skipped)
	}
	if records[2].Outcome != "timed-out" || records[2].WaitedMS != 120000 || records[4].ReadyBy != "jitter" {
		t.Errorf("records = %+v", records)
	}
}

func TestReadMissingIsEmpty(t *testing.T) {
	records, skipped, err := Read(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(records) != 0 || skipped != 0 {
		t.Errorf("Read(missing) = %v, %d, %v", records, skipped, err)
	}
}

func TestSummarize(t *testing.T) {
	records, _, _ := Read("testdata/history.jsonl")
	got := Summarize(records)
	want := Stats{Boots: 5, TimedOut: 1, MedianMS: 980, P90MS: 120000, MaxMS: 120000}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Stats{}) {
		t.Errorf("Summarize(nil) = %+v", Summarize(nil))
	}
	ten := make([]Record, 10)
	for i := range ten {
		ten[i] = Record{WaitedMS: int64(i + 1)}
	}
	if s := Summarize(ten); s.MedianMS != 5 || s.P90MS != 9 || s.MaxMS != 10 {
		t.Errorf("nearest-rank percentiles of 1..10 = %+v, want median 5, p90 9", s)
	}
}

func TestAppendAndTrim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lib", "history.jsonl")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 2*MaxRecords+1; i++ {
		if err := Append(path, Record{Time: base.Add(time.Duration(i) * time.Hour), Outcome: "ready", WaitedMS: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	records, skipped, err := Read(path)
	if err != nil || skipped != 0 {
		t.Fatal(err, skipped)
	}
	if len(records) != MaxRecords || records[len(records)-1].WaitedMS != 2*MaxRecords {
		t.Errorf("after trimming: %d records, last %+v; want the newest %d", len(records), records[len(records)-1], MaxRecords)
	}
	// A torn last line, as a power cut leaves it, does not stop appends.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-`)
	f.Close()
	if err := Append(path, Record{Time: base, Outcome: "ready", WaitedMS: 7}); err != nil {
		t.Fatal(err)
	}
	records, skipped, _ = Read(path)
	if skipped != 1 || len(records) != MaxRecords {
		t.Errorf("after a torn line: %d records, %d skipped", len(records), skipped)
	}
}

func TestFromJournal(t *testing.T) {
	b, err := os.ReadFile("testdata/journal.json")
	if err != nil {
		t.Fatal(err)
	}
	records, skipped := FromJournal(b)
	if len(records) != 2 || skipped != 3 {
		t.Fatalf("got %d records, %d skipped; want 2 and 3", len(records), skipped)
	}
	first := records[0]
	if first.WaitedMS != 1100 || first.ReadyBy != "jitter" || first.Kernel != "6.1.0-41-amd64" || first.BootID != "0b9d8f" || !first.Time.Equal(time.UnixMicro(1795680000000000)) {
		t.Errorf("first = %+v", first)
	}
	if records[1].Outcome != "timed-out" || records[1].WaitedMS != 5000 || records[1].Threshold != -1 {
		t.Errorf("second = %+v", records[1])
	}
}

func TestReadyBy(t *testing.T) {
	tests := []struct {
		name    string
		outcome string
		s       Sources
		want    string
	}{
		{name: "timeout", outcome: "timed-out", s: Sources{SeedsCredited: 1}, want: ByTimeout},
		{name: "our seed made it ready", outcome: "ready", s: Sources{SeedsCredited: 1, HWRNGCredited: true}, want: BySeed},
		{name: "ready before us, hwrng", outcome: "ready", s: Sources{InitializedAtStart: true, SeedsCredited: 1, HWRNGCredited: true}, want: ByHWRNG},
		{name: "ready before us, CPU", outcome: "ready", s: Sources{InitializedAtStart: true, CPUCredited: true}, want: ByCPU},
		{name: "ready before us, unknown", outcome: "ready", s: Sources{InitializedAtStart: true}, want: ByAlready},
		{name: "active wait", outcome: "ready", s: Sources{Active: true}, want: ByJitter},
		{name: "passive wait", outcome: "ready", s: Sources{}, want: ByEntropy},
		{name: "stopped", outcome: "cancelled", s: Sources{}, want: ByStopped},
	}
	for _, tt := range tests {
		if got := ReadyBy(tt.outcome, tt.s); got != tt.want {
			t.Errorf("%s: ReadyBy = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// countMarks parses the SVG as XML and counts the per-boot bars.
func countMarks(t *testing.T, svg []byte) int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	marks := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return marks
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			for _, a := range el.Attr {
				if a.Name.Local == "class" && a.Value == "boot" {
					marks++
				}
			}
		}
	}
}

func TestWriteSVG(t *testing.T) {
	records, _, _ := Read("testdata/history.jsonl")
	records[0].Kernel = `<script>&"x"`
	for _, n := range []int{0, 1, len(records)} {
		t.Run(fmt.Sprint(n, " boots"), func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteSVG(&b, records[:n], "Boot waits & <more>"); err != nil {
				t.Fatal(err)
			}
			if got := countMarks(t, b.Bytes()); got != n {
				t.Errorf("%d marks for %d boots", got, n)
			}
			if strings.Contains(b.String(), "<script>") {
				t.Errorf("text not escaped")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/history.jsonl", "testdata/journal.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		records, _ := Parse(b)
		for _, r := range records {
			if r.WaitedMS < 0 || r.Outcome == "" || r.Time.IsZero() {
				t.Errorf("invalid record accepted: %+v", r)
			}
		}
		journal, _ := FromJournal(b)
		var svg bytes.Buffer
		if err := WriteSVG(&svg, append(records, journal...), "fuzz"); err != nil {
			t.Fatal(err)
		}
		if got := countMarks(t, svg.Bytes()); got != len(records)+len(journal) {
			t.Errorf("%d marks for %d records", got, len(records)+len(journal))
		}
	})
}
