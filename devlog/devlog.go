// Package devlog is the development-mode "push service": it delivers nothing
// and logs one line per wake-up, so that register → push can be tried with
// curl before any FCM or APNs credentials exist.
package devlog

import (
	"context"
	"log/slog"

	"github.com/p2http/p2http"
)

// Sender logs wake-ups for one service instead of sending them.
type Sender struct {
	Service p2http.Service
	Logger  *slog.Logger
}

// Send implements p2http.Sender. It logs the service, the priority and the
// first characters of the device hash (FCM's collapse key), never the token.
func (s *Sender) Send(ctx context.Context, w p2http.Wakeup) error {
	short := w.Device
	if len(short) > 6 {
		short = short[:6]
	}
	s.Logger.InfoContext(ctx, "DEV MODE: push not sent, logged instead",
		"service", s.Service, "priority", p2http.PriorityOf(w), "device", short)
	return nil
}
