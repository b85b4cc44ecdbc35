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

// niceCeil rounds up to 1, 2 or 5 times a power of ten, for axis ticks.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// WriteSVG draws the wait of each boot as a bar, oldest left, coloured by
// what made the pool ready, with the median as a line.
func WriteSVG(w io.Writer, records []Record, title string) error {
	const (
		width, height                        = 760, 360
		left, right, top, bottom, legendRows = 64, 16, 40, 96, 2
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
	top_ := niceCeil(float64(maxMS) / 1000)
	y := func(seconds float64) float64 { return float64(top) + plotH - seconds/top_*plotH }
	// Axes and ticks, in seconds.
	for i := 0; i <= 4; i++ {
		s := top_ * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", left, width-right, y(s), y(s))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g s</text>`+"\n", left-6, y(s)+4, s)
	}
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">wait</text>`+"\n", float64(top)+plotH/2)

	n := len(records)
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">no boots recorded</text>`+"\n", float64(left)+plotW/2, float64(top)+plotH/2)
	}
	slot := plotW / float64(max(n, 1))
	barW := math.Max(slot*0.8, 1)
	for i, r := range records {
		seconds := float64(r.WaitedMS) / 1000
		// A zero wait still gets a visible sliver: every boot has a mark.
		h := math.Max(float64(top)+plotH-y(seconds), 2)
		x := float64(left) + float64(i)*slot + (slot-barW)/2
		fmt.Fprintf(&b, `<rect class="boot" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x, float64(top)+plotH-h, barW, h, colorFor(r.ReadyBy),
			esc(fmt.Sprintf("%s: waited %.3f s, %s (%s)", r.Time.Format("2006-01-02 15:04"), seconds, r.ReadyBy, r.Kernel)))
	}
	if n > 0 {
		median := float64(Summarize(records).MedianMS) / 1000
		fmt.Fprintf(&b, `<line class="median" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black" stroke-dasharray="4 3"/>`+"\n", left, width-right, y(median), y(median))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11">median %.2f s</text>`+"\n", width-right, y(median)-4, median)
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
