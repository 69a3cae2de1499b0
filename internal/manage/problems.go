package manage

import (
	"context"
	"slices"

	"github.com/tokend/tokend"
)

type problemsKey struct{}

// WithProblems answers a context that carries the problems its caller has
// already found with a request, before the service saw it (the fields the
// API's schema refuses: one missing, one of the wrong type). The service's
// create and edit operations start their own validation from them, so that
// the request is refused, whatever else they find, with every invalid field
// named at once; and since a request with problems is never written, they
// run only the checks that write nothing.
func WithProblems(ctx context.Context, p tokend.Problems) context.Context {
	if len(p) == 0 {
		return ctx
	}
	return context.WithValue(ctx, problemsKey{}, slices.Clone(p))
}

// problemsOf answers the problems WithProblems put in ctx, a copy the
// caller may add to.
func problemsOf(ctx context.Context) tokend.Problems {
	p, _ := ctx.Value(problemsKey{}).(tokend.Problems)
	return slices.Clone(p)
}
