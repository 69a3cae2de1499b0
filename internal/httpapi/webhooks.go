package httpapi

import (
	"context"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

type webhookIDPath struct {
	ID string `path:"id" maxLength:"64" doc:"The webhook id (whk_…)."`
}

type webhookMatchInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The webhook id (whk_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the webhook changed since."`
}

type webhookOutput struct {
	ETag string `header:"ETag"`
	Body tokend.Webhook
}

type webhookSecretOutput struct {
	ETag string `header:"ETag"`
	Body tokend.WebhookWithSecret
}

func webhookSecretOut(w tokend.Webhook, sec string, err error) (*webhookSecretOutput, error) {
	if err != nil {
		return nil, err
	}
	return &webhookSecretOutput{ETag: etag(w.Version), Body: tokend.WebhookWithSecret{Webhook: w, Secret: sec}}, nil
}

func webhookOut(w tokend.Webhook, err error) (*webhookOutput, error) {
	if err != nil {
		return nil, err
	}
	return &webhookOutput{ETag: etag(w.Version), Body: w}, nil
}

type createWebhookInput struct {
	Body checked[tokend.WebhookInput]
}

func handleWebhookCreate(api huma.API, svc *manage.Service) func(context.Context, *createWebhookInput) (*webhookSecretOutput, error) {
	return func(ctx context.Context, in *createWebhookInput) (*webhookSecretOutput, error) {
		body, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		w, sec, err := svc.CreateWebhook(ctx, actorFrom(ctx), body)
		return webhookSecretOut(w, sec, withBodyProblems(probs, err))
	}
}

type listWebhooksInput struct {
	AppID  string `query:"app_id" maxLength:"64" doc:"Only the endpoints limited to this application."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor string `query:"cursor" maxLength:"512"`
}

type webhookPageOutput struct {
	Body tokend.Page[tokend.Webhook]
}

func handleWebhookList(svc *manage.Service) func(context.Context, *listWebhooksInput) (*webhookPageOutput, error) {
	return func(ctx context.Context, in *listWebhooksInput) (*webhookPageOutput, error) {
		page, err := svc.Webhooks(ctx, actorFrom(ctx), tokend.WebhookFilter{AppID: in.AppID, Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return &webhookPageOutput{Body: page}, nil
	}
}

func handleWebhookGet(svc *manage.Service) func(context.Context, *webhookIDPath) (*webhookOutput, error) {
	return func(ctx context.Context, in *webhookIDPath) (*webhookOutput, error) {
		return webhookOut(svc.Webhook(ctx, actorFrom(ctx), in.ID))
	}
}

type patchWebhookInput struct {
	ID      string `path:"id" maxLength:"64" doc:"The webhook id (whk_…)."`
	IfMatch string `header:"If-Match" doc:"The ETag from a previous read; 412 if the webhook changed since."`
	Body    checked[tokend.WebhookPatch]
}

func handleWebhookPatch(api huma.API, svc *manage.Service) func(context.Context, *patchWebhookInput) (*webhookOutput, error) {
	return func(ctx context.Context, in *patchWebhookInput) (*webhookOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		patch, ctx, probs, err := decodeChecked(ctx, api, in.Body)
		if err != nil {
			return nil, err
		}
		w, err := svc.UpdateWebhook(ctx, actorFrom(ctx), in.ID, patch, v)
		return webhookOut(w, withBodyProblems(probs, err))
	}
}

func handleWebhookDelete(svc *manage.Service) func(context.Context, *webhookMatchInput) (*struct{}, error) {
	return func(ctx context.Context, in *webhookMatchInput) (*struct{}, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		return nil, svc.DeleteWebhook(ctx, actorFrom(ctx), in.ID, v)
	}
}

func handleWebhookRotate(svc *manage.Service) func(context.Context, *webhookMatchInput) (*webhookSecretOutput, error) {
	return func(ctx context.Context, in *webhookMatchInput) (*webhookSecretOutput, error) {
		v, err := ifMatch(in.IfMatch)
		if err != nil {
			return nil, err
		}
		return webhookSecretOut(svc.RotateWebhookSecret(ctx, actorFrom(ctx), in.ID, v))
	}
}

type webhookTestOutput struct {
	Body tokend.WebhookTestAnswer
}

func handleWebhookTest(svc *manage.Service) func(context.Context, *webhookIDPath) (*webhookTestOutput, error) {
	return func(ctx context.Context, in *webhookIDPath) (*webhookTestOutput, error) {
		id, err := svc.TestWebhook(ctx, actorFrom(ctx), in.ID)
		if err != nil {
			return nil, err
		}
		return &webhookTestOutput{Body: tokend.WebhookTestAnswer{EventID: id}}, nil
	}
}

type listDeliveriesInput struct {
	ID     string `path:"id" maxLength:"64" doc:"The webhook id (whk_…)."`
	Status string `query:"status" maxLength:"16" doc:"pending, delivered or failed; absent for all."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" doc:"Page size, default 50."`
	Cursor string `query:"cursor" maxLength:"512"`
}

type deliveryPageOutput struct {
	Body tokend.Page[tokend.Delivery]
}

func handleWebhookDeliveries(svc *manage.Service) func(context.Context, *listDeliveriesInput) (*deliveryPageOutput, error) {
	return func(ctx context.Context, in *listDeliveriesInput) (*deliveryPageOutput, error) {
		page, err := svc.WebhookDeliveries(ctx, actorFrom(ctx), in.ID, tokend.DeliveryFilter{Status: in.Status, Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return &deliveryPageOutput{Body: page}, nil
	}
}

type deliveryPath struct {
	ID         string `path:"id" maxLength:"64" doc:"The webhook id (whk_…)."`
	DeliveryID string `path:"delivery_id" maxLength:"64" doc:"The delivery id (dlv_…)."`
}

type deliveryOutput struct {
	Body tokend.Delivery
}

func handleDeliveryRetry(svc *manage.Service) func(context.Context, *deliveryPath) (*deliveryOutput, error) {
	return func(ctx context.Context, in *deliveryPath) (*deliveryOutput, error) {
		d, err := svc.RetryDelivery(ctx, actorFrom(ctx), in.ID, in.DeliveryID)
		if err != nil {
			return nil, err
		}
		return &deliveryOutput{Body: d}, nil
	}
}
