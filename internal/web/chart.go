package web

// The usage chart of the token page: hourly verifications over the last
// seven days, valid and refused stacked, drawn as SVG on the server so that
// the page needs no charting script.

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tokend/tokend"
)

// chartHours is the span of the chart.
const chartHours = 7 * 24

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartBarW   = 5
	chartPlotH  = 140
	chartLeft   = 44 // room for the y-axis labels
	chartTop    = 10
	chartBottom = 24 // room for the day labels
)

type usageChart struct {
	Width, Height int
	PlotTop       int
	PlotBottom    int
	PlotLeft      int
	PlotRight     int
	YMax          int64
	YMid          int64
	YMidY         int
	Bars          []chartBar
	Days          []chartTick
	Valid         int64
	Refused       int64
	// ByCode totals the span by verification outcome, most frequent first.
	ByCode []codeCount
	From   time.Time
}

// Empty reports whether nothing was verified in the span.
func (c usageChart) Empty() bool { return c.Valid == 0 && c.Refused == 0 }

// Summary is the chart's text alternative.
func (c usageChart) Summary() string {
	return fmt.Sprintf("Verifications per hour over the last 7 days: %d valid, %d refused.", c.Valid, c.Refused)
}

type chartBar struct {
	X              int
	ValidY, ValidH int
	RefY, RefH     int
	Title          string
}

type chartTick struct {
	X     int
	Label string
}

type codeCount struct {
	Code  tokend.Code
	Count int64
}

func newUsageChart(usage []tokend.UsageCount, from time.Time) usageChart {
	from = from.UTC()
	valid := make([]int64, chartHours)
	refused := make([]int64, chartHours)
	byCode := map[tokend.Code]int64{}
	c := usageChart{From: from}
	for _, u := range usage {
		i := int(u.Hour.UTC().Sub(from) / time.Hour)
		if i < 0 || i >= chartHours {
			continue
		}
		byCode[u.Code] += u.Count
		if u.Code == tokend.CodeValid {
			valid[i] += u.Count
			c.Valid += u.Count
		} else {
			refused[i] += u.Count
			c.Refused += u.Count
		}
	}
	for code, n := range byCode {
		c.ByCode = append(c.ByCode, codeCount{code, n})
	}
	sort.Slice(c.ByCode, func(i, j int) bool {
		if c.ByCode[i].Count != c.ByCode[j].Count {
			return c.ByCode[i].Count > c.ByCode[j].Count
		}
		return c.ByCode[i].Code < c.ByCode[j].Code
	})
	var peak int64
	for i := range valid {
		peak = max(peak, valid[i]+refused[i])
	}
	c.YMax = niceCeil(peak)
	c.PlotLeft, c.PlotTop = chartLeft, chartTop
	c.PlotRight = chartLeft + chartHours*chartBarW
	c.PlotBottom = chartTop + chartPlotH
	c.Width, c.Height = c.PlotRight+8, c.PlotBottom+chartBottom
	c.YMid = c.YMax / 2
	c.YMidY = c.PlotBottom - int(c.YMid*chartPlotH/c.YMax)
	for i := range chartHours {
		v, f := valid[i], refused[i]
		if v == 0 && f == 0 {
			continue
		}
		x := chartLeft + i*chartBarW
		vh := barHeight(v, c.YMax)
		fh := barHeight(f, c.YMax)
		hour := from.Add(time.Duration(i) * time.Hour)
		c.Bars = append(c.Bars, chartBar{
			X: x, ValidY: c.PlotBottom - vh, ValidH: vh, RefY: c.PlotBottom - vh - fh, RefH: fh,
			Title: hour.Format("Mon 2 Jan 15:00") + " UTC: " + strconv.FormatInt(v, 10) + " valid, " + strconv.FormatInt(f, 10) + " refused",
		})
	}
	for i := range chartHours {
		hour := from.Add(time.Duration(i) * time.Hour)
		if hour.Hour() == 0 {
			c.Days = append(c.Days, chartTick{X: chartLeft + i*chartBarW, Label: hour.Format("Mon 2")})
		}
	}
	return c
}

// barHeight scales n to the plot, at least one unit for any use at all.
func barHeight(n, top int64) int {
	if n == 0 {
		return 0
	}
	return max(1, int(n*chartPlotH/top))
}

// niceCeil answers a round axis maximum at or above n: 1, 2 or 5 times a
// power of ten (at least 2, so that the middle line is a whole number).
func niceCeil(n int64) int64 {
	if n <= 2 {
		return 2
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n && m*p >= 2 {
				return m * p
			}
		}
	}
}
