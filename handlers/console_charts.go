package handlers

import (
	"fmt"
	"strconv"
	"strings"
)

// Charts are drawn on the server as SVG (no chart script: the console's
// policy allows none) from a series of values per period, each with its
// data as a table beside it for screen readers and for reading exactly.

// chartSeries is one line or one kind of bar: its name, its CSS class and
// a value per period.
type chartSeries struct {
	Name, Class string
	Values      []int64
}

type chartTick struct {
	Pos   float64
	Label string
}

type chartBar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type chartLine struct {
	Points string
	Class  string
	Title  string
}

type chartLegend struct {
	Name, Class string
}

// chart is an SVG chart ready for the template.
type chart struct {
	ID, Title, Desc string
	Width, Height   float64
	// Plot is the drawing area: left, top, right and bottom edges.
	Left, Top, Right, Bottom float64
	YTicks, XTicks           []chartTick
	Bars                     []chartBar
	Lines                    []chartLine
	Legend                   []chartLegend
	top                      int64
	n                        int
}

const (
	chartWidth, chartHeight = 720, 260
	chartLeft, chartTop     = 56, 16
	chartRight, chartBottom = 712, 222
)

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, so the
// axis ticks are round numbers.
func niceMax(v int64) int64 {
	if v <= 0 {
		return 1
	}
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func newChart(id, title, desc string, labels []string, series []chartSeries) chart {
	c := chart{ID: id, Title: title, Desc: desc, Width: chartWidth, Height: chartHeight, Left: chartLeft, Top: chartTop, Right: chartRight, Bottom: chartBottom}
	var top int64
	for _, s := range series {
		for _, v := range s.Values {
			top = max(top, v)
		}
		c.Legend = append(c.Legend, chartLegend{Name: s.Name, Class: s.Class})
	}
	top = niceMax(top)
	// As many steps (at most five) as divide the top evenly.
	steps := int64(1)
	for _, k := range []int64{5, 4, 2} {
		if top%k == 0 {
			steps = k
			break
		}
	}
	for i := int64(0); i <= steps; i++ {
		v := top * i / steps
		c.YTicks = append(c.YTicks, chartTick{Pos: c.y(v, top), Label: strconv.FormatInt(v, 10)})
	}
	// Label at most six periods along the bottom, so dates do not meet.
	every := max(1, (len(labels)+5)/6)
	for i, l := range labels {
		if i%every == 0 {
			c.XTicks = append(c.XTicks, chartTick{Pos: c.slotCenter(i, len(labels)), Label: l})
		}
	}
	c.top = top
	c.n = len(labels)
	return c
}

func (c *chart) y(v, top int64) float64 {
	return c.Bottom - (c.Bottom-c.Top)*float64(v)/float64(top)
}

func (c *chart) slotCenter(i, n int) float64 {
	w := (c.Right - c.Left) / float64(max(n, 1))
	return c.Left + w*(float64(i)+0.5)
}

// barChart draws the series side by side in each period.
func barChart(id, title, desc string, labels []string, series []chartSeries) chart {
	c := newChart(id, title, desc, labels, series)
	slot := (c.Right - c.Left) / float64(max(len(labels), 1))
	bw := slot * 0.8 / float64(max(len(series), 1))
	for i, l := range labels {
		x0 := c.Left + slot*float64(i) + slot*0.1
		for k, s := range series {
			v := s.Values[i]
			y := c.y(v, c.top)
			c.Bars = append(c.Bars, chartBar{X: round1(x0 + bw*float64(k)), Y: round1(y), W: round1(max(bw-1, 1)), H: round1(c.Bottom - y),
				Class: s.Class, Title: fmt.Sprintf("%s, %s: %d", l, s.Name, v)})
		}
	}
	return c
}

// lineChart draws each series as a line through the periods.
func lineChart(id, title, desc string, labels []string, series []chartSeries) chart {
	c := newChart(id, title, desc, labels, series)
	for _, s := range series {
		var pts []string
		for i, v := range s.Values {
			pts = append(pts, fmt.Sprintf("%g,%g", round1(c.slotCenter(i, len(labels))), round1(c.y(v, c.top))))
		}
		c.Lines = append(c.Lines, chartLine{Points: strings.Join(pts, " "), Class: s.Class, Title: s.Name})
	}
	return c
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
