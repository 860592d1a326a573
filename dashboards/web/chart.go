package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/figures"
)

// The charts are SVG drawn here, as numbers a template writes out: the
// page needs no script to show them, and the stylesheet colours them by
// class (so that the Content-Security-Policy needs no inline style).

// chart is one SVG chart in a viewBox of Width x Height.
type chart struct {
	Width, Height            int
	Left, Right, Top, Bottom float64 // the plot area
	YTicks, XTicks           []tick
	Bars                     []bar
	Lines                    []line
	Hovers                   []bar // transparent columns with a <title>
	Label                    string
	Empty                    bool
}

type tick struct {
	At    string // the coordinate, formatted
	Label string
}

type bar struct {
	X, Y, W, H string
	Class      string
	Title      string
}

type line struct {
	Class    string
	Segments []string // "x,y x,y ..." for <polyline points>
	Dots     []point
}

type point struct{ X, Y string }

// Geometry of the trend charts, in viewBox units (about pixels at full width).
const (
	chartWidth   = 600
	chartHeight  = 250
	chartLeft    = 56
	chartRight   = 12
	chartTop     = 12
	chartBottom  = 32
	maxXLabels   = 8
	barFill      = 0.72 // share of a day's slot a bar fills
	rateDotLimit = 31   // more days than this: dots only where a line has a single point
)

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// windowDays lists the days of w.
func windowDays(w analyze.Window) []string {
	from, err1 := time.Parse(time.DateOnly, w.From)
	to, err2 := time.Parse(time.DateOnly, w.To)
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

func newChart(label string, days []string) *chart {
	c := &chart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Right: chartWidth - chartRight,
		Top: chartTop, Bottom: chartHeight - chartBottom, Label: label}
	slot := c.slot(len(days))
	step := (len(days) + maxXLabels - 1) / maxXLabels
	for i := 0; i < len(days); i += max(step, 1) {
		t, _ := time.Parse(time.DateOnly, days[i])
		c.XTicks = append(c.XTicks, tick{At: f1(c.Left + slot*(float64(i)+0.5)), Label: t.Format("Jan 2")})
	}
	return c
}

func (c *chart) slot(n int) float64 { return (c.Right - c.Left) / float64(max(n, 1)) }

// volumeChart draws the daily mail as bars: passing DMARC below, failing
// above.
func volumeChart(days []string, data []analyze.Day) *chart {
	c := newChart("Messages per day, passing and failing DMARC", days)
	byDay := map[string]analyze.Day{}
	var top int64
	for _, d := range data {
		byDay[d.Day] = d
		top = max(top, d.Messages)
	}
	c.Empty = top == 0
	ymax := 4 * niceCeil(float64(top)/4)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		c.YTicks = append(c.YTicks, tick{At: f1(c.y(v, 0, ymax)), Label: compact(v)})
	}
	slot := c.slot(len(days))
	for i, day := range days {
		x := c.Left + slot*float64(i)
		c.Hovers = append(c.Hovers, bar{X: f1(x), Y: f1(c.Top), W: f1(slot), H: f1(c.Bottom - c.Top), Class: "hover",
			Title: hoverVolume(day, byDay[day])})
		d, ok := byDay[day]
		if !ok || d.Messages == 0 {
			continue
		}
		bx, bw := x+slot*(1-barFill)/2, slot*barFill
		pass, fail := float64(d.DMARCPass), float64(d.Messages-d.DMARCPass)
		yPass := c.y(pass, 0, ymax)
		c.Bars = append(c.Bars, bar{X: f1(bx), Y: f1(yPass), W: f1(bw), H: f1(c.Bottom - yPass), Class: "bar-pass"})
		if fail > 0 {
			yAll := c.y(pass+fail, 0, ymax)
			c.Bars = append(c.Bars, bar{X: f1(bx), Y: f1(yAll), W: f1(bw), H: f1(yPass - yAll), Class: "bar-fail"})
		}
	}
	return c
}

func hoverVolume(day string, d analyze.Day) string {
	if d.Messages == 0 {
		return day + ": no reported mail"
	}
	return fmt.Sprintf("%s: %s messages, %s pass DMARC (%s), %s fail", day, figures.Count(d.Messages), figures.Count(d.DMARCPass),
		percent(d.PassRate()), figures.Count(d.Messages-d.DMARCPass))
}

// rateChart draws the daily DMARC pass rate and the DKIM- and SPF-aligned
// shares as lines, over a range that starts low enough for the lowest.
func rateChart(days []string, data []analyze.Day) *chart {
	c := newChart("DMARC pass rate and aligned DKIM and SPF per day", days)
	byDay := map[string]analyze.Day{}
	low := 1.0
	for _, d := range data {
		if d.Messages == 0 {
			continue
		}
		byDay[d.Day] = d
		low = min(low, ratio(d.DMARCPass, d.Messages), ratio(d.DKIMAligned, d.Messages), ratio(d.SPFAligned, d.Messages))
	}
	c.Empty = len(byDay) == 0
	lo, step := 0.0, 25.0
	switch {
	case low >= 0.92:
		lo, step = 90, 2
	case low >= 0.82:
		lo, step = 80, 5
	case low >= 0.52:
		lo, step = 50, 10
	}
	for v := lo; v <= 100.001; v += step {
		c.YTicks = append(c.YTicks, tick{At: f1(c.y(v, lo, 100)), Label: strconv.FormatFloat(v, 'f', -1, 64) + "%"})
	}
	slot := c.slot(len(days))
	series := []struct {
		class string
		value func(analyze.Day) int64
	}{
		// DKIM is drawn wide and light under DMARC: where the two are
		// equal (no SPF-only passes), both stay visible.
		{"line-spf", func(d analyze.Day) int64 { return d.SPFAligned }},
		{"line-dkim", func(d analyze.Day) int64 { return d.DKIMAligned }},
		{"line-dmarc", func(d analyze.Day) int64 { return d.DMARCPass }},
	}
	for _, s := range series {
		l := line{Class: s.class}
		var seg []string
		var segPoints []point
		flush := func() {
			if len(seg) > 1 {
				l.Segments = append(l.Segments, strings.Join(seg, " "))
			}
			if len(seg) == 1 || len(days) <= rateDotLimit {
				l.Dots = append(l.Dots, segPoints...)
			}
			seg, segPoints = nil, nil
		}
		for i, day := range days {
			d, ok := byDay[day]
			if !ok {
				flush()
				continue
			}
			x := f1(c.Left + slot*(float64(i)+0.5))
			y := f1(c.y(100*ratio(s.value(d), d.Messages), lo, 100))
			seg = append(seg, x+","+y)
			segPoints = append(segPoints, point{x, y})
		}
		flush()
		c.Lines = append(c.Lines, l)
	}
	for i, day := range days {
		d := byDay[day]
		title := day + ": no reported mail"
		if d.Messages > 0 {
			title = fmt.Sprintf("%s: DMARC %s, DKIM aligned %s, SPF aligned %s of %s messages", day,
				percent(d.PassRate()), percent(ratio(d.DKIMAligned, d.Messages)), percent(ratio(d.SPFAligned, d.Messages)), figures.Count(d.Messages))
		}
		c.Hovers = append(c.Hovers, bar{X: f1(c.Left + slot*float64(i)), Y: f1(c.Top), W: f1(slot), H: f1(c.Bottom - c.Top), Class: "hover", Title: title})
	}
	return c
}

// y maps v in lo..hi to the plot's height (SVG y grows downwards).
func (c *chart) y(v, lo, hi float64) float64 {
	if hi <= lo {
		return c.Bottom
	}
	v = min(max(v, lo), hi)
	return c.Bottom - (v-lo)/(hi-lo)*(c.Bottom-c.Top)
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, at least 1:
// a grid step.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// compact writes an axis figure: 950, 1.5k, 20k, 1.2M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(math.Round(v/100)/10, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// shareBar is a horizontal bar split into parts, for the dispositions.
type shareBar struct {
	Parts []sharePart
	Total int64
}

type sharePart struct {
	Label    string
	Class    string
	Count    int64
	Share    float64
	X, W     string // in a viewBox of 100 x 1
	TitleTxt string
}

func newShareBar(parts ...sharePart) shareBar {
	var total int64
	for _, p := range parts {
		total += p.Count
	}
	b := shareBar{Total: total}
	x := 0.0
	for _, p := range parts {
		p.Share = ratio(p.Count, total)
		w := 100 * p.Share
		p.X, p.W = strconv.FormatFloat(x, 'f', 3, 64), strconv.FormatFloat(w, 'f', 3, 64)
		p.TitleTxt = fmt.Sprintf("%s: %s messages (%s)", p.Label, figures.Count(p.Count), percent(p.Share))
		x += w
		b.Parts = append(b.Parts, p)
	}
	return b
}

// ladder is the rollout ladder with the step a domain is at: one cell per
// step of dmarcd.Rollout.
type ladder struct {
	Cells []ladderCell
	Label string
}

type ladderCell struct {
	X     string
	Class string
	Title string
}

func newLadder(step dmarcd.RolloutStep) ladder {
	at := dmarcd.StepIndex(step)
	l := ladder{Label: step.String()}
	for i, s := range dmarcd.Rollout {
		class := "step"
		if i <= at {
			class += " step-" + string(s.Policy)
		}
		if i == at {
			class += " step-at"
		}
		l.Cells = append(l.Cells, ladderCell{X: strconv.Itoa(i * 9), Class: class, Title: s.String()})
	}
	return l
}

// noRecordLadder is the ladder of a domain without a DMARC record: no step.
func noRecordLadder() ladder {
	l := newLadder(dmarcd.Rollout[0])
	l.Label = "no record"
	for i := range l.Cells {
		l.Cells[i].Class = "step"
	}
	return l
}
