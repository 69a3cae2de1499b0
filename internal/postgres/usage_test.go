package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/postgres/pgtest"
	"github.com/tokend/tokend/internal/verify"
	"github.com/tokend/tokend/secret"
)

// nulStore puts a NUL byte into the last-used address of one token, a value
// PostgreSQL refuses in text, as a verification's ip once did.
type nulStore struct {
	*Store
	bad string
}

func (s nulStore) RecordUsage(ctx context.Context, b tokend.UsageBatch) error {
	last := append([]tokend.LastUse(nil), b.Last...)
	for i := range last {
		if last[i].TokenID == s.bad {
			last[i].IP += "\x00"
		}
	}
	b.Last = last
	return s.Store.RecordUsage(ctx, b)
}

// TestOneRefusedUsageRowHoldsBackNoOther: PostgreSQL refuses a whole batch
// for one text with a NUL byte; the engine's flush still writes every other
// row, at once and on every later flush.
func TestOneRefusedUsageRowHoldsBackNoOther(t *testing.T) {
	s := open(t, pgtest.WithSchema(t, pgtest.NewDatabase(t)))
	ctx := t.Context()
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = fmt.Sprintf("tok_nul%d", i)
	}
	seed(t, s, ids...)
	h, err := secret.NewHasher([]byte("0123456789abcdef0123456789abcdef-test-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	secs := make([]string, len(ids))
	for i, id := range ids {
		sec, err := secret.Generate("shop")
		if err != nil {
			t.Fatal(err)
		}
		secs[i] = sec.Reveal()
		sum := h.Sum(secs[i])
		if _, err := s.UpdateToken(ctx, id, func(t *tokend.Token) (tokend.Event, error) {
			t.SecretHash = sum[:]
			return event(tokend.ActionTokenUpdate, "app_a", id), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	e := verify.New(verify.Options{Store: nulStore{Store: s, bad: ids[3]}, Hasher: h})
	for round := 1; round <= 2; round++ {
		for _, sec := range secs {
			res, err := e.Verify(ctx, tokend.VerifyRequest{Token: sec, IP: "192.0.2.10"})
			if err != nil || !res.Valid {
				t.Fatalf("Verify: %+v, %v", res, err)
			}
		}
		if err := e.Flush(ctx); err == nil {
			t.Fatalf("round %d: Flush answered no error though a row was refused", round)
		}
		for i, id := range ids {
			tok, err := s.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(round)
			if i == 3 {
				want = 0
			}
			if tok.UseCount != want {
				t.Errorf("round %d: %s has %d uses, want %d", round, id, tok.UseCount, want)
			}
		}
	}
}
