package client

import (
	"context"
	"iter"

	"github.com/tokend/tokend"
)

// AllApps iterates over every application from o.Cursor on, fetching pages
// of o.Limit as it goes. It stops at the first error, which it yields.
func (c *Client) AllApps(ctx context.Context, o ListOptions) iter.Seq2[tokend.App, error] {
	return all(o.Cursor, func(cursor string) (tokend.Page[tokend.App], error) {
		o.Cursor = cursor
		return c.Apps(ctx, o)
	})
}

// AllTokens iterates over every token that o selects, like AllApps.
func (c *Client) AllTokens(ctx context.Context, o TokenListOptions) iter.Seq2[tokend.Token, error] {
	return all(o.Cursor, func(cursor string) (tokend.Page[tokend.Token], error) {
		o.Cursor = cursor
		return c.Tokens(ctx, o)
	})
}

// AllEvents iterates over every audit event that o selects, like AllApps.
func (c *Client) AllEvents(ctx context.Context, o EventListOptions) iter.Seq2[tokend.Event, error] {
	return all(o.Cursor, func(cursor string) (tokend.Page[tokend.Event], error) {
		o.Cursor = cursor
		return c.Events(ctx, o)
	})
}

func all[T any](cursor string, list func(cursor string) (tokend.Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			p, err := list(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			// A server that answers the cursor it was given would loop forever.
			if p.NextCursor == "" || p.NextCursor == cursor {
				return
			}
			cursor = p.NextCursor
		}
	}
}
