package httpapi

import (
	"context"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

type leakReportInput struct {
	Body tokend.LeakReport
}

// LeakAnswer is POST /v1/leaks' answer: one result per reported secret, in
// the order given. It never holds a secret.
type LeakAnswer struct {
	Results []tokend.LeakResult `json:"results" nullable:"false"`
}

type leakReportOutput struct {
	Body LeakAnswer
}

func handleLeakReport(svc *manage.Service) func(context.Context, *leakReportInput) (*leakReportOutput, error) {
	return func(ctx context.Context, in *leakReportInput) (*leakReportOutput, error) {
		res, err := svc.ReportLeaks(ctx, actorFrom(ctx), in.Body)
		if err != nil {
			return nil, err
		}
		return &leakReportOutput{Body: LeakAnswer{Results: res}}, nil
	}
}
