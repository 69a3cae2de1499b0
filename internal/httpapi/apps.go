package httpapi

import (
	"context"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

type appIDPath struct {
	ID string `path:"id" maxLength:"64" doc:"The app id (app_…)."`
}

type appMatchInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The app id (app_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the app changed since."`
}

type appOutput struct {
	ETag string `header:"ETag"`
	Body tokend.App
}

func appOut(a tokend.App, err error) (*appOutput, error) {
	if err != nil {
		return nil, err
	}
	return &appOutput{ETag: etag(a.Version), Body: a}, nil
}

type createAppInput struct {
	Body checked[tokend.AppInput]
}

func handleAppCreate(api huma.API, svc *manage.Service) func(context.Context, *createAppInput) (*appOutput, error) {
	return func(ctx context.Context, in *createAppInput) (*appOutput, error) {
		body, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		a, err := svc.CreateApp(ctx, actorFrom(ctx), body)
		return appOut(a, withBodyProblems(probs, err))
	}
}

type pageInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor string `query:"cursor" maxLength:"512"`
}

type appPageOutput struct {
	Body tokend.Page[tokend.App]
}

func handleAppList(svc *manage.Service) func(context.Context, *pageInput) (*appPageOutput, error) {
	return func(ctx context.Context, in *pageInput) (*appPageOutput, error) {
		page, err := svc.Apps(ctx, actorFrom(ctx), tokend.AppFilter{Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return &appPageOutput{Body: page}, nil
	}
}

func handleAppGet(svc *manage.Service) func(context.Context, *appIDPath) (*appOutput, error) {
	return func(ctx context.Context, in *appIDPath) (*appOutput, error) {
		return appOut(svc.App(ctx, actorFrom(ctx), in.ID))
	}
}

type patchAppInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The app id (app_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the app changed since."`
	Body    checked[tokend.AppPatch]
}

func handleAppPatch(api huma.API, svc *manage.Service) func(context.Context, *patchAppInput) (*appOutput, error) {
	return func(ctx context.Context, in *patchAppInput) (*appOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		patch, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		a, err := svc.UpdateApp(ctx, actorFrom(ctx), in.ID, patch, v)
		return appOut(a, withBodyProblems(probs, err))
	}
}

func handleAppDelete(svc *manage.Service) func(context.Context, *appMatchInput) (*struct{}, error) {
	return func(ctx context.Context, in *appMatchInput) (*struct{}, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		return nil, svc.DeleteApp(ctx, actorFrom(ctx), in.ID, v)
	}
}

// RevokeAllAnswer says how many tokens revoke-all revoked.
type RevokeAllAnswer struct {
	Revoked int `json:"revoked"`
}

type revokeAllOutput struct {
	Body RevokeAllAnswer
}

func handleAppRevokeAll(svc *manage.Service) func(context.Context, *appIDPath) (*revokeAllOutput, error) {
	return func(ctx context.Context, in *appIDPath) (*revokeAllOutput, error) {
		n, err := svc.RevokeAll(ctx, actorFrom(ctx), in.ID)
		if err != nil {
			return nil, err
		}
		return &revokeAllOutput{Body: RevokeAllAnswer{Revoked: n}}, nil
	}
}

type auditInput struct {
	TokenID string `query:"token_id" maxLength:"64"`
	AppID   string `query:"app_id" maxLength:"64"`
	Action  string `query:"action" maxLength:"64" example:"token.revoke"`
	Since   string `query:"since" doc:"RFC 3339; events at or after."`
	Until   string `query:"until" doc:"RFC 3339; events before."`
	Limit   int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor  string `query:"cursor" maxLength:"512"`
}

type eventPageOutput struct {
	Body tokend.Page[tokend.Event]
}

func handleAudit(svc *manage.Service) func(context.Context, *auditInput) (*eventPageOutput, error) {
	return func(ctx context.Context, in *auditInput) (*eventPageOutput, error) {
		var p tokend.Problems
		f := tokend.EventFilter{
			TokenID: in.TokenID, AppID: in.AppID, Action: in.Action, Limit: in.Limit, Cursor: in.Cursor,
			Since: parseTime(&p, "since", in.Since), Until: parseTime(&p, "until", in.Until),
		}
		if err := p.Err(); err != nil {
			return nil, err
		}
		page, err := svc.Events(ctx, actorFrom(ctx), f)
		if err != nil {
			return nil, err
		}
		return &eventPageOutput{Body: page}, nil
	}
}

type healthOutput struct {
	Body struct {
		Status string `json:"status" enum:"ok"`
	}
}

func handleHealth(context.Context, *struct{}) (*healthOutput, error) {
	out := &healthOutput{}
	out.Body.Status = "ok"
	return out, nil
}

func handleReady(ready func(context.Context) error) func(context.Context, *struct{}) (*healthOutput, error) {
	return func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		if ready != nil {
			if err := ready(ctx); err != nil {
				return nil, tokend.Unavailable(err)
			}
		}
		return handleHealth(ctx, nil)
	}
}

type ownerPath struct {
	ID string `path:"id" maxLength:"64" doc:"The app id (app_…)."`
	// No maxLength: an owner id that cannot be one is not found (404),
	// whatever is wrong with it.
	OwnerID string `path:"owner_id" doc:"The owner id: 1 to 128 visible ASCII characters, percent-encoded where a URL path needs it."`
}

func handleOwnerRevokeAll(svc *manage.Service) func(context.Context, *ownerPath) (*revokeAllOutput, error) {
	return func(ctx context.Context, in *ownerPath) (*revokeAllOutput, error) {
		n, err := svc.RevokeOwner(ctx, actorFrom(ctx), in.ID, in.OwnerID)
		if err != nil {
			return nil, err
		}
		return &revokeAllOutput{Body: RevokeAllAnswer{Revoked: n}}, nil
	}
}
