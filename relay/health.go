package relay

import (
	"context"
	"log/slog"
	"sync"

	"github.com/p2http/p2http"
)

// health remembers which push services currently refuse our credentials or
// configuration, and logs each such burst once when it starts and once when
// it ends, rather than once per push.
type health struct {
	log      *slog.Logger
	mu       sync.Mutex
	degraded map[p2http.Service]string // service -> caller-safe reason
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, degraded: map[p2http.Service]string{}}
}

// record notes the outcome of one send.
func (h *health) record(ctx context.Context, s p2http.Service, err error) {
	code := p2http.ErrorCode(err)
	if code != "" && code != p2http.EUPSTREAM {
		return // temporary trouble and dead tokens say nothing about our set-up
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	reason, was := h.degraded[s]
	switch {
	case code == "" && was:
		delete(h.degraded, s)
		h.log.InfoContext(ctx, "push service accepts our pushes again", "service", s)
	case code == p2http.EUPSTREAM && !was:
		reason = p2http.ErrorMessage(err)
		h.degraded[s] = reason
		h.log.ErrorContext(ctx, "push service rejects our credentials or configuration; pushes fail until fixed",
			"service", s, "reason", reason)
	}
}

// Degraded reports whether service s currently refuses our credentials or
// configuration, and why.
func (r *Relay) Degraded(s p2http.Service) (bool, string) {
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	reason, ok := r.health.degraded[s]
	return ok, reason
}
