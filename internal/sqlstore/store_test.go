package sqlstore

import (
	"testing"
	"time"
)

// A query is written once with $n placeholders; SQLite gets ?n, which may
// stand several times just as $n does.
func TestQueryRebinding(t *testing.T) {
	q := Q(`UPDATE x SET a = $2 WHERE id = $1 AND b > $2`)
	if got, want := (&Flavor{}).Text(q), `UPDATE x SET a = $2 WHERE id = $1 AND b > $2`; got != want {
		t.Errorf("dollar: %s", got)
	}
	if got, want := (&Flavor{Question: true}).Text(q), `UPDATE x SET a = ?2 WHERE id = ?1 AND b > ?2`; got != want {
		t.Errorf("question: %s, want %s", got, want)
	}
}

// One scan destination reads the time column of either database: SQLite's
// unix microseconds and PostgreSQL's timestamptz, both back in UTC.
func TestTimeScan(t *testing.T) {
	want := time.Date(2026, time.March, 14, 9, 26, 53, 589793000, time.UTC)
	for _, src := range []any{want.UnixMicro(), want.In(time.FixedZone("X", 3600))} {
		var got Time
		if err := got.Scan(src); err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(want) || got.Time.Location() != time.UTC {
			t.Errorf("Scan(%T) = %v, want %v", src, got.Time, want)
		}
	}
	var null NullTime
	if err := null.Scan(nil); err != nil || null.Ptr() != nil {
		t.Errorf("NULL: %v, %v", null.Ptr(), err)
	}
	var notNull Time
	if err := notNull.Scan(nil); err == nil {
		t.Error("a NULL read into a Time that may not be NULL")
	}
}
