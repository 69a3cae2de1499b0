package web

// The usage chart of the token page: verifications over the last seven
// days (UTC), per day or, on demand, per hour, valid and refused stacked,
// drawn as SVG on the server so that the page needs no charting script.

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tokend/tokend"
)

// chartHours is the span of the chart.
const chartHours = 7 * 24

// Chart geometry, in SVG user units. The SVG stretches to its box
// (preserveAspectRatio none) and holds no text: the axis labels are HTML
// beside it, so that they keep their size at every width.
const (
	chartSlot  = 10  // the width of one bar's slot
	chartBarW  = 7   // the bar within it
	chartPlotH = 100 // the plot's height
)

type usageChart struct {
	// Hourly is true for one bar per hour, else one per day.
	Hourly        bool
	Width, Height int
	YMax          int64
	YMid          int64
	YMidY         int
	BarW          int
	Bars          []chartBar
	// Days label the seven days of the span, oldest first.
	Days    []string
	Valid   int64
	Refused int64
	// ByCode totals the span by verification outcome, most frequent first.
	ByCode []codeCount
	From   time.Time
}

// Empty reports whether nothing was verified in the span.
func (c usageChart) Empty() bool { return c.Valid == 0 && c.Refused == 0 }

// Summary is the chart's text alternative.
func (c usageChart) Summary() string {
	per := "day"
	if c.Hourly {
		per = "hour"
	}
	return fmt.Sprintf("Verifications per %s over the last 7 days: %d valid, %d refused.", per, c.Valid, c.Refused)
}

type chartBar struct {
	X              int
	ValidY, ValidH int
	RefY, RefH     int
	Title          string
}

type codeCount struct {
	Code  tokend.Code
	Count int64
}

// newUsageChart draws usage over the chartHours from from (a midnight,
// UTC): per day, or per hour when hourly.
func newUsageChart(usage []tokend.UsageCount, from time.Time, hourly bool) usageChart {
	from = from.UTC()
	slot := 24 * time.Hour
	if hourly {
		slot = time.Hour
	}
	n := int(chartHours * time.Hour / slot)
	valid := make([]int64, n)
	refused := make([]int64, n)
	byCode := map[tokend.Code]int64{}
	c := usageChart{From: from, Hourly: hourly}
	for _, u := range usage {
		d := u.Hour.UTC().Sub(from)
		if d < 0 || d >= chartHours*time.Hour {
			continue
		}
		i := int(d / slot)
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
	c.Width, c.Height, c.BarW = n*chartSlot, chartPlotH, chartBarW
	c.YMid = c.YMax / 2
	c.YMidY = chartPlotH - int(c.YMid*chartPlotH/c.YMax)
	for i := range n {
		v, f := valid[i], refused[i]
		if v == 0 && f == 0 {
			continue
		}
		vh := barHeight(v, c.YMax)
		fh := barHeight(f, c.YMax)
		at := from.Add(time.Duration(i) * slot)
		when := at.Format("Mon 2 Jan")
		if hourly {
			when = at.Format("Mon 2 Jan 15:00")
		}
		c.Bars = append(c.Bars, chartBar{
			X: i*chartSlot + (chartSlot-chartBarW)/2, ValidY: chartPlotH - vh, ValidH: vh, RefY: chartPlotH - vh - fh, RefH: fh,
			Title: when + " UTC: " + strconv.FormatInt(v, 10) + " valid, " + strconv.FormatInt(f, 10) + " refused",
		})
	}
	for i := range chartHours / 24 {
		c.Days = append(c.Days, from.AddDate(0, 0, i).Format("Mon 2"))
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
