package web

// The token list's sorting, its total, its stale-token filter and badge,
// and the Home card of stale tokens.

import (
	"strings"
	"time"

	"github.com/tokend/tokend"
)

// staleBadges are the "unused for" thresholds the list marks and filters
// by, longest first.
var staleBadges = []int{90, 30}

// homeStaleDays is the threshold of the Home card of stale tokens.
const homeStaleDays = 30

// sortHeader is a sortable column header of the list.
type sortHeader struct {
	F          tokenFilters
	Col, Label string
}

var _ = addFuncs(map[string]any{
	"sortTH": func(f tokenFilters, col, label string) sortHeader { return sortHeader{F: f, Col: col, Label: label} },
	// unusedDays answers the badge of a live token unused (never used:
	// since created) for 90 or 30 days, 0 for none.
	"unusedDays": func(now time.Time, t tokend.Token) int {
		switch t.StatusAt(now) {
		case tokend.StatusActive, tokend.StatusDisabled:
		default:
			return 0
		}
		last := t.CreatedAt // never used: since created, as the stores count
		if t.LastUsedAt != nil {
			last = *t.LastUsedAt
		}
		for _, d := range staleBadges {
			if !last.After(now.Add(-time.Duration(d) * 24 * time.Hour)) {
				return d
			}
		}
		return 0
	},
})

// parseUnusedFor reads the list's unused_for: a number of days ("30d").
func parseUnusedFor(s string) (tokend.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := tokend.ParseDuration(s)
	if err != nil || !strings.HasSuffix(s, "d") || d <= 0 {
		var p tokend.Problems
		p.Add("unused_for", "must be a number of days such as 30d")
		return 0, p.Err()
	}
	return d, nil
}

// sorted answers the sort in effect and whether it is descending.
func (f tokenFilters) sorted() (string, bool) {
	s, desc, ok := tokend.TokenOrder(f.Sort, f.Order)
	if !ok {
		return tokend.TokenSortCreated, true
	}
	return s, desc
}

// SortURL answers the first page sorted by col: in the other order when it
// is the sort in effect, else in col's default order.
func (f tokenFilters) SortURL(col string) string {
	cur, desc := f.sorted()
	g := f
	g.Sort, g.Order = col, ""
	if cur == col {
		g.Order = tokend.OrderDesc
		if desc {
			g.Order = tokend.OrderAsc
		}
	}
	if col == tokend.TokenSortCreated && g.Order != tokend.OrderAsc {
		g.Sort, g.Order = "", "" // the default list
	}
	return g.URL("")
}

// AriaSort answers the aria-sort of col's header: "ascending" or
// "descending" for the sort in effect, "" for the others.
func (f tokenFilters) AriaSort(col string) string {
	cur, desc := f.sorted()
	switch {
	case cur != col:
		return ""
	case desc:
		return "descending"
	}
	return "ascending"
}

// SortHint is what following col's header link does, for its label.
func (f tokenFilters) SortHint(col string) string {
	switch f.AriaSort(col) {
	case "ascending":
		return "sort descending"
	case "descending":
		return "sort ascending"
	}
	return "sort by this column"
}
