package httpapi

import (
	"context"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

type eventsInput struct {
	Type    string `query:"type" maxLength:"64" example:"token.revoked" doc:"One event type (see docs/events.md)."`
	TokenID string `query:"token_id" maxLength:"64"`
	AppID   string `query:"app_id" maxLength:"64"`
	Since   string `query:"since" doc:"RFC 3339; events at or after."`
	Until   string `query:"until" doc:"RFC 3339; events before."`
	Limit   int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor  string `query:"cursor" maxLength:"512"`
}

type notificationPageOutput struct {
	Body tokend.Page[tokend.Notification]
}

func handleEvents(svc *manage.Service) func(context.Context, *eventsInput) (*notificationPageOutput, error) {
	return func(ctx context.Context, in *eventsInput) (*notificationPageOutput, error) {
		var p tokend.Problems
		f := tokend.NotificationFilter{
			Type: in.Type, TokenID: in.TokenID, AppID: in.AppID, Limit: in.Limit, Cursor: in.Cursor,
			Since: parseTime(&p, "since", in.Since), Until: parseTime(&p, "until", in.Until),
		}
		if err := p.Err(); err != nil {
			return nil, err
		}
		page, err := svc.Notifications(ctx, actorFrom(ctx), f)
		if err != nil {
			return nil, err
		}
		return &notificationPageOutput{Body: page}, nil
	}
}
