// SPDX-License-Identifier: GPL-3.0-or-later

package history

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
)

// readyByColors gives each reason its colour in the chart.
var readyByColors = []struct{ by, color, label string }{
	{BySeed, "#2e7d32", "seed"},
	{ByHWRNG, "#1565c0", "hardware RNG"},
	{ByCPU, "#00838f", "CPU RNG"},
	{ByJitter, "#ef6c00", "jitter (active wait)"},
	{ByEntropy, "#6a1b9a", "other entropy"},
	{ByAlready, "#757575", "ready before the gate"},
	{ByTimeout, "#c62828", "timeout"},
	{ByStopped, "#9e9e9e", "stopped"},
}

func colorFor(by string) string {
	for _, c := range readyByColors {
		if c.by == by {
			return c.color
		}
	}
	return "#424242"
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// scale maps a wait onto [0, 1] logarithmically: waits span from
// milliseconds (a seed) to minutes (a timeout), and both must be seen.
type scale struct{ top float64 }

func newScale(maxMS int64) scale {
	// The top is the next power of ten of milliseconds, at least 1 s.
	top := 1000.0
	for top < float64(maxMS) {
		top *= 10
	}
	return scale{top: top}
}

func (s scale) at(ms float64) float64 { return math.Log10(1+ms) / math.Log10(1+s.top) }

// ticks are the powers of ten of milliseconds up to the top, from 1 ms.
func (s scale) ticks() []float64 {
	t := []float64{0}
	for ms := 1.0; ms <= s.top; ms *= 10 {
		t = append(t, ms)
	}
	return t
}

// waitLabel writes a wait: milliseconds below a second, else seconds.
func waitLabel(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return fmt.Sprintf("%.2f s", float64(ms)/1000)
}

func msLabel(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms < 1000:
		return fmt.Sprintf("%g ms", ms)
	default:
		return fmt.Sprintf("%g s", ms/1000)
	}
}

// WriteSVG draws the wait of each boot as a bar on a logarithmic scale,
// oldest left, coloured by what made the pool ready, with the median as a
// line and, while they fit, each wait written above its bar.
func WriteSVG(w io.Writer, records []Record, title string) error {
	const (
		width, height                        = 760, 380
		left, right, top, bottom, legendRows = 84, 16, 40, 96, 2
	)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(title))

	var maxMS int64
	for _, r := range records {
		maxMS = max(maxMS, r.WaitedMS)
	}
	sc := newScale(maxMS)
	y := func(ms float64) float64 { return float64(top) + plotH - sc.at(ms)*plotH }
	for _, ms := range sc.ticks() {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", left, width-right, y(ms), y(ms))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(ms)+4, msLabel(ms))
	}
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">wait (log scale)</text>`+"\n", float64(top)+plotH/2)

	n := len(records)
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">no boots recorded</text>`+"\n", float64(left)+plotW/2, float64(top)+plotH/2)
	}
	slot := plotW / float64(max(n, 1))
	barW := math.Max(slot*0.8, 1)
	labelled := n <= 30
	for i, r := range records {
		ms := float64(r.WaitedMS)
		// A zero wait still gets a visible sliver: every boot has a mark.
		h := math.Max(float64(top)+plotH-y(ms), 2)
		x := float64(left) + float64(i)*slot + (slot-barW)/2
		fmt.Fprintf(&b, `<rect class="boot" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x, float64(top)+plotH-h, barW, h, colorFor(r.ReadyBy),
			esc(fmt.Sprintf("%s: waited %.3f s, %s (%s)", r.Time.Format("2006-01-02 15:04"), ms/1000, r.ReadyBy, r.Kernel)))
		if labelled {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, float64(top)+plotH-h-4, waitLabel(r.WaitedMS))
		}
	}
	if n > 0 {
		median := float64(Summarize(records).MedianMS)
		fmt.Fprintf(&b, `<line class="median" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black" stroke-dasharray="4 3"/>`+"\n", left, width-right, y(median), y(median))
		// Its label goes with the legend, where no bar can hide it.
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black" stroke-dasharray="4 3"/><text x="%d" y="%d">median %s</text>`+"\n",
			left, left+24, height-12, height-12, left+30, height-8, waitLabel(int64(median)))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left, top+int(plotH)+16, esc(records[0].Time.Format("2006-01-02")))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", width-right, top+int(plotH)+16, esc(records[n-1].Time.Format("2006-01-02")))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">boots, oldest first (%d)</text>`+"\n", float64(left)+plotW/2, top+int(plotH)+16, n)
	// Legend: what made the pool ready.
	perRow := (len(readyByColors) + legendRows - 1) / legendRows
	for i, c := range readyByColors {
		lx := left + (i%perRow)*170
		ly := height - bottom + 44 + (i/perRow)*20
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, ly-10, c.color, lx+16, ly, esc(c.label))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}
