package auditchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Source is a consistent view of one audit log (sqlstore answers one in a
// single read transaction).
type Source interface {
	// Head is the chain's last position and hash as the store records it.
	Head(ctx context.Context) (Head, error)
	// Checkpoint is the latest retention cut; nil when none was made.
	Checkpoint(ctx context.Context) (*Checkpoint, error)
	// Rows calls fn for every chained row after position from, in
	// position order.
	Rows(ctx context.Context, from int64, fn func(Row) error) error
	// ByHash answers the chained row whose hash is h.
	ByHash(ctx context.Context, h []byte) (Row, bool, error)
	// At answers the chained row at position pos.
	At(ctx context.Context, pos int64) (Row, bool, error)
	// Pending answers how many rows wait to join the chain (written by
	// tokend and chained after their commit), and the oldest of them.
	Pending(ctx context.Context) (int64, Row, error)
	// Stray answers the oldest row that is neither in the chain nor
	// waiting to join it: tokend did not write it.
	Stray(ctx context.Context) (Row, bool, error)
}

// Report is what an intact chain holds.
type Report struct {
	Rows  int64       // rows verified
	Head  Head        // where the chain ends
	Start *Checkpoint // the retention cut it starts from; nil: the first row ever
	// Pending rows are not chained yet: written by PostgreSQL instances
	// in the last moment (they chain after committing), or, where rows
	// are chained as they are written, inserted behind tokend's back (see
	// Options.PendingIsBroken).
	Pending       int64
	OldestPending Row
}

// Broken is the first place where the chain does not hold.
type Broken struct {
	Row    *Row  // the row named; nil when the break is a row that is gone
	Pos    int64 // the position where it breaks
	Reason string
}

func (b *Broken) Error() string {
	if b.Row != nil {
		return b.Row.Name() + ": " + b.Reason
	}
	return fmt.Sprintf("position %d: %s", b.Pos, b.Reason)
}

// ErrNeedKey: the chain starts at a signed checkpoint and no key was given
// to check it.
var ErrNeedKey = errors.New("the audit log starts at a retention checkpoint, whose signature only the pepper can check: give the pepper (TOKEND_PEPPER or --pepper-file)")

var errStop = errors.New("stop")

// Options say how strict Verify is.
type Options struct {
	// Key checks a retention checkpoint's signature (Key(pepper)).
	Key []byte
	// PendingIsBroken: a row outside the chain can only have been
	// inserted behind tokend's back (SQLite chains each row in the
	// transaction that writes it).
	PendingIsBroken bool
}

// Verify walks the chain in src and answers its report, or a *Broken
// naming the first row that was changed, deleted or inserted out of order.
func Verify(ctx context.Context, src Source, o Options) (Report, error) {
	head, err := src.Head(ctx)
	if err != nil {
		return Report{}, err
	}
	cp, err := src.Checkpoint(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Head: head, Start: cp}
	var (
		from  int64
		prev  = Genesis
		last  *Row
		start = "the first row ever written, or a signed retention checkpoint"
	)
	if cp != nil {
		if o.Key == nil {
			return Report{}, ErrNeedKey
		}
		if !cp.Signed(o.Key) {
			return Report{}, &Broken{Pos: cp.Pos, Reason: "the retention checkpoint's signature is wrong: forged, or changed after tokend made it (or this is not the pepper of this database)"}
		}
		from, prev = cp.Pos, cp.Hash
		start = fmt.Sprintf("the retention checkpoint at position %d", cp.Pos)
	}
	// The walk only reads; a break is diagnosed after it, since some
	// drivers cannot run a query while another's rows are open.
	var broke *Row
	err = src.Rows(ctx, from, func(r Row) error {
		if r.Gone {
			after := start
			if last != nil {
				after = last.Name()
			}
			return &Broken{Pos: r.Pos, Reason: fmt.Sprintf("deleted — row %d, written after %s, is gone (its place in the chain is left)", r.ID, after)}
		}
		if !bytes.Equal(r.PrevHash, prev) {
			broke = &r
			return errStop
		}
		if !bytes.Equal(Sum(r.PrevHash, r), r.Hash) {
			return &Broken{Row: &r, Pos: r.Pos, Reason: "content does not match its hash — changed after it was written"}
		}
		prev, last = r.Hash, &r
		rep.Rows++
		return nil
	})
	if errors.Is(err, errStop) {
		return Report{}, diagnose(ctx, src, *broke, last, start)
	}
	if err != nil {
		return Report{}, err
	}
	lastPos := from
	if last != nil {
		lastPos = last.Pos
	}
	switch {
	case head.Pos > lastPos:
		return Report{}, &Broken{Pos: lastPos + 1, Reason: fmt.Sprintf("the last rows were deleted: the chain's head is at position %d, but its last row is at position %d", head.Pos, lastPos)}
	case head.Pos < lastPos:
		r, _, err := src.At(ctx, head.Pos+1)
		if err != nil {
			return Report{}, err
		}
		return Report{}, &Broken{Row: &r, Pos: r.Pos, Reason: fmt.Sprintf("inserted after the chain's head (position %d)", head.Pos)}
	case !bytes.Equal(head.Hash, prev):
		return Report{}, &Broken{Row: last, Pos: lastPos, Reason: "the last row does not match the chain's head: replaced after it was written"}
	}
	stray, found, err := src.Stray(ctx)
	if err != nil {
		return Report{}, err
	}
	if found {
		return Report{}, &Broken{Row: &stray, Reason: "not in the chain — inserted behind tokend's back, or its place in the chain was deleted"}
	}
	if rep.Pending, rep.OldestPending, err = src.Pending(ctx); err != nil {
		return Report{}, err
	}
	if rep.Pending > 0 && o.PendingIsBroken {
		r := rep.OldestPending
		return Report{}, &Broken{Row: &r, Reason: "not in the chain — inserted behind tokend's back"}
	}
	return rep, nil
}

// diagnose names what broke the link into r, which does not follow last
// (nil: r is the first row after start).
func diagnose(ctx context.Context, src Source, r Row, last *Row, start string) error {
	own := bytes.Equal(Sum(r.PrevHash, r), r.Hash)
	q, found, err := src.ByHash(ctx, r.PrevHash)
	if err != nil {
		return err
	}
	after := start
	if last != nil {
		after = last.Name()
	}
	switch {
	case !own:
		// Neither its link nor its hash holds: tokend never wrote it.
		return &Broken{Row: &r, Pos: r.Pos, Reason: "inserted — neither its link nor its hash match the chain (it follows " + after + ")"}
	case found && q.Pos > r.Pos:
		return &Broken{Row: &r, Pos: r.Pos, Reason: fmt.Sprintf("out of order — it was written after %s, which now comes after it", q.Name())}
	case found && last != nil && q.Pos < last.Pos:
		// The rows after q up to last do not belong between q and r.
		x, ok, err := src.At(ctx, q.Pos+1)
		if err != nil {
			return err
		}
		if !ok {
			x = *last
		}
		return &Broken{Row: &x, Pos: x.Pos, Reason: fmt.Sprintf("inserted — %s was written right after %s", r.Name(), q.Name())}
	}
	if last == nil {
		return &Broken{Pos: r.Pos - 1, Reason: fmt.Sprintf("deleted — the rows before %s are gone (the chain must start at %s)", r.Name(), start)}
	}
	return &Broken{Pos: r.Pos - 1, Reason: fmt.Sprintf("deleted — the row written between %s and %s is gone", after, r.Name())}
}
