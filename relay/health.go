package relay

import (
	"context"
	"log/slog"
	"sync"

	"github.com/p2http/p2http"
)

// health remembers which push services currently refuse the credentials or
// configuration of which app, and logs each such burst once when it starts
// and once when it ends, rather than once per push.
type health struct {
	log      *slog.Logger
	mu       sync.Mutex
	degraded map[appService]string // -> caller-safe reason
}

// appService is one app's use of one push service: each app has its own
// credentials, so each can fail on its own.
type appService struct {
	app     p2http.App
	service p2http.Service
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, degraded: map[appService]string{}}
}

// record notes the outcome of one send for app's credentials.
func (h *health) record(ctx context.Context, app p2http.App, s p2http.Service, err error) {
	code := p2http.ErrorCode(err)
	if code != "" && code != p2http.EUPSTREAM {
		return // temporary trouble and dead tokens say nothing about our set-up
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	app = app.OrDefault()
	key := appService{app, s}
	reason, was := h.degraded[key]
	switch {
	case code == "" && was:
		delete(h.degraded, key)
		h.log.InfoContext(ctx, "push service accepts our pushes again", "app", app, "service", s)
	case code == p2http.EUPSTREAM && !was:
		reason = p2http.ErrorMessage(err)
		h.degraded[key] = reason
		h.log.ErrorContext(ctx, "push service rejects our credentials or configuration; pushes fail until fixed",
			"app", app, "service", s, "reason", reason)
	}
}

// Degraded reports whether service s currently refuses the default app's
// credentials or configuration, and why.
func (r *Relay) Degraded(s p2http.Service) (bool, string) {
	return r.AppDegraded(p2http.DefaultApp, s)
}

// AppDegraded reports whether service s currently refuses app's
// credentials or configuration, and why.
func (r *Relay) AppDegraded(app p2http.App, s p2http.Service) (bool, string) {
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	reason, ok := r.health.degraded[appService{app.OrDefault(), s}]
	return ok, reason
}
