package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/storetest"
)

// An event id drawn by a transaction that commits late must not be lower
// than the id of an event some reader has already seen: a reader that lists
// the newest events and then only looks for ids above the highest it saw
// would never learn of the late one. Here the first writer holds its
// transaction open after inserting its event, and a second writer commits
// one meanwhile; a reader must wait for the first writer rather than answer
// the second event alone.
func TestEventsReadWaitsForEarlierIDs(t *testing.T) {
	db := pgtest.NewDatabase(t)
	s := open(t, db)
	ctx := t.Context()

	inserted, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.Write(ctx, func(tx *sql.Tx) error {
			if err := s.InsertEvent(ctx, tx, event(tokend.ActionAppCreate, "app_first", "")); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	select {
	case <-inserted:
	case err := <-firstDone:
		t.Fatalf("first writer: %v", err)
	}
	// Writers do not wait for each other.
	if err := s.AppendEvent(ctx, event(tokend.ActionAppCreate, "app_second", "")); err != nil {
		t.Fatal(err)
	}

	type result struct {
		page tokend.Page[tokend.Event]
		err  error
	}
	read := make(chan result, 1)
	go func() {
		page, err := s.Events(ctx, tokend.EventFilter{})
		read <- result{page, err}
	}()
	watch, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for waiting := 0; waiting == 0; {
		select {
		case r := <-read:
			close(release)
			t.Fatalf("a read answered %v (err %v) while the event with the lower id was not committed: a reader following the log from there would miss it", ids(r.page.Items), r.err)
		default:
		}
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 && time.Now().After(deadline) {
			t.Fatal("the read neither waited for the first writer nor answered")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	r := <-read
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := ids(r.page.Items); len(got) != 2 || r.page.Items[0].AppID != "app_second" || r.page.Items[1].AppID != "app_first" {
		t.Fatalf("the read answered %v, want the second writer's event then the first's", got)
	}
}

func ids(evs []tokend.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d(%s)", ev.ID, ev.AppID))
	}
	return out
}

// Of raises of one mark from two instances (two Store values on one
// database), exactly one raises.
func TestRaiseOnceAcrossInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b := open(t, db), open(t, db)
	seed(t, a, "tok_race")
	storetest.RaiseOnceRace(t, []tokend.EventStore{a, b}, "tok_race")
}

// Lead lets one instance run a job at a time: while one holds it, another
// is refused at once; afterwards it runs.
func TestLeadOneInstanceAtATime(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b := open(t, db), open(t, db)
	ctx := t.Context()
	ran, err := a.Lead(ctx, "job", func(ctx context.Context) error {
		other, err := b.Lead(ctx, "job", func(context.Context) error {
			t.Error("the second instance ran the job while the first held it")
			return nil
		})
		if other || err != nil {
			t.Errorf("second Lead = %v, %v; want false, nil", other, err)
		}
		if ran, err := b.Lead(ctx, "another job", func(context.Context) error { return nil }); !ran || err != nil {
			t.Errorf("Lead of another job = %v, %v; want it run", ran, err)
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("first Lead = %v, %v; want it run", ran, err)
	}
	if ran, err := b.Lead(ctx, "job", func(context.Context) error { return nil }); !ran || err != nil {
		t.Errorf("Lead after the first ended = %v, %v; want it run", ran, err)
	}
}
