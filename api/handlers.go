package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/p2http/p2http"
)

// registerRequest is p2http.RegisterRequest as JSON.
type registerRequest struct {
	App      p2http.App     `json:"app"`
	Service  p2http.Service `json:"service"`
	Account  string         `json:"account"`
	DeviceID string         `json:"device_id"`
	Token    string         `json:"token"`
}

// registeredResponse is p2http.Registered as JSON.
type registeredResponse struct {
	JID    string `json:"jid"`
	Node   string `json:"node"`
	Secret string `json:"secret"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if !s.decode(w, r, &req) {
		return
	}
	reg, err := s.cfg.Registrar.Register(r.Context(), p2http.RegisterRequest(req))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	status := http.StatusOK
	if reg.Created {
		status = http.StatusCreated
	}
	s.json(w, status, registeredResponse{JID: reg.JID, Node: reg.Node, Secret: reg.Secret})
}

// unregisterRequest is p2http.UnregisterRequest as JSON.
type unregisterRequest struct {
	App      p2http.App     `json:"app"`
	Service  p2http.Service `json:"service"`
	Account  string         `json:"account"`
	DeviceID string         `json:"device_id"`
}

func (s *Server) handleUnregister(w http.ResponseWriter, r *http.Request) {
	var req unregisterRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.cfg.Registrar.Unregister(r.Context(), p2http.UnregisterRequest(req)); err != nil {
		s.problem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type pushRequest struct {
	App       p2http.App `json:"app"`
	Node      string     `json:"node"`
	Secret    string     `json:"secret"`
	Domain    string     `json:"domain"`
	Important *bool      `json:"important"`
	Summary   *summary   `json:"summary"`
}

// summary is a XEP-0357 push summary. Only whether the body is blank is
// read; nothing of it is kept, logged or forwarded.
type summary struct {
	MessageCount             *int   `json:"message_count"`
	LastMessageSender        string `json:"last_message_sender"`
	LastMessageBody          string `json:"last_message_body"`
	PendingSubscriptionCount *int   `json:"pending_subscription_count"`
}

// pushResponse is p2http.PushResult as JSON.
type pushResponse struct {
	Delivered bool            `json:"delivered"`
	Coalesced bool            `json:"coalesced"`
	Service   p2http.Service  `json:"service"`
	Priority  p2http.Priority `json:"priority"`
}

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	var req pushRequest
	if !s.decode(w, r, &req) {
		return
	}
	if sm := req.Summary; sm != nil {
		if sm.MessageCount != nil && *sm.MessageCount < 0 {
			s.problem(w, r, p2http.Invalid("summary.message_count", "message_count must not be negative"))
			return
		}
		if sm.PendingSubscriptionCount != nil && *sm.PendingSubscriptionCount < 0 {
			s.problem(w, r, p2http.Invalid("summary.pending_subscription_count", "pending_subscription_count must not be negative"))
			return
		}
	}
	important := req.Summary != nil && strings.TrimSpace(req.Summary.LastMessageBody) != ""
	if req.Important != nil {
		important = *req.Important
	}
	res, err := s.cfg.Pusher.Push(r.Context(), p2http.PushRequest{
		App: req.App, Node: req.Node, Secret: req.Secret, Domain: req.Domain, Important: important,
		Caller: callerOf(r),
	})
	if err != nil {
		s.problem(w, r, err)
		return
	}
	s.json(w, http.StatusOK, pushResponse{Delivered: !res.Coalesced, Coalesced: res.Coalesced, Service: res.Service, Priority: res.Priority})
}

type infoResponse struct {
	JID      string           `json:"jid"`
	Services []p2http.Service `json:"services"`
	Apps     []appInfo        `json:"apps"`
	Version  string           `json:"version"`
	DevMode  bool             `json:"dev_mode"`
}

type appInfo struct {
	Name     p2http.App       `json:"name"`
	JID      string           `json:"jid"`
	Services []p2http.Service `json:"services"`
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	info, err := s.cfg.Describer.Describe(r.Context())
	if err != nil {
		s.problem(w, r, err)
		return
	}
	apps := make([]appInfo, 0, len(info.Apps))
	for _, a := range info.Apps {
		apps = append(apps, appInfo{Name: a.Name, JID: a.JID, Services: orEmpty(a.Services)})
	}
	s.json(w, http.StatusOK, infoResponse{JID: info.JID, Services: orEmpty(info.Services), Apps: apps,
		Version: s.cfg.Version, DevMode: s.cfg.DevMode})
}

// orEmpty is services, or an empty list where there are none: the
// contract's lists are never null.
func orEmpty(services []p2http.Service) []p2http.Service {
	if services == nil {
		return []p2http.Service{}
	}
	return services
}

// registrationInfo is what GET /v1/registration shows of a
// p2http.Registration: never its token or secret.
type registrationInfo struct {
	App        p2http.App        `json:"app"`
	Service    p2http.Service    `json:"service"`
	Domain     string            `json:"domain"`
	SecretKind p2http.SecretKind `json:"secret_kind"`
	CreatedAt  *time.Time        `json:"created_at"`
	UpdatedAt  *time.Time        `json:"updated_at"`
	LastPushAt *time.Time        `json:"last_push_at"`
	// PushHistory is "kept" or "none" (the stateless mode, where the
	// fields after it are null).
	PushHistory       string              `json:"push_history"`
	PushCount         *int64              `json:"push_count"`
	LastPushOutcome   *p2http.PushOutcome `json:"last_push_outcome"`
	LastFailureAt     *time.Time          `json:"last_failure_at"`
	LastFailureReason *string             `json:"last_failure_reason"`
}

// The values of registrationInfo.PushHistory.
const (
	historyKept = "kept"
	historyNone = "none"
)

// newRegistrationInfo shows reg.
func newRegistrationInfo(reg p2http.Registration) registrationInfo {
	info := registrationInfo{
		App: reg.App, Service: reg.Service, Domain: reg.Domain, SecretKind: reg.SecretKind,
		CreatedAt: timeOrNull(reg.CreatedAt), UpdatedAt: timeOrNull(reg.UpdatedAt), PushHistory: historyNone,
	}
	h := reg.PushHistory
	if !h.Recorded {
		return info
	}
	info.PushHistory, info.PushCount, info.LastPushAt, info.LastFailureAt = historyKept, &h.Pushes, h.LastPushAt, h.LastFailureAt
	if h.LastOutcome != "" {
		info.LastPushOutcome = &h.LastOutcome
	}
	if h.LastFailureAt != nil {
		info.LastFailureReason = &h.LastFailureReason
	}
	return info
}

func (s *Server) handleRegistration(w http.ResponseWriter, r *http.Request) {
	node := r.URL.Query().Get("node")
	if node == "" {
		s.problem(w, r, p2http.Invalid("node", "query parameter node is required"))
		return
	}
	reg, err := s.cfg.Registrar.Lookup(r.Context(), node)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	s.json(w, http.StatusOK, newRegistrationInfo(reg))
}

// timeOrNull is t, or null when unknown (a stateless node holds no times).
func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status           string                    `json:"status"`
	Database         string                    `json:"database"`
	MigrationVersion uint                      `json:"migration_version"`
	DevMode          bool                      `json:"dev_mode"`
	Services         map[p2http.Service]string `json:"services"`
	// Apps holds the services of each further app; absent when there are none.
	Apps map[string]map[p2http.Service]string `json:"apps,omitempty"`
}

// handleReadyz answers 200 while the database answers and its migrations
// are applied. A push service in trouble shows in the body only: taking the
// instance out of a load balancer would not help it.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	rd := s.readiness(r.Context())
	status := http.StatusOK
	if rd.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	s.json(w, status, rd)
}

// Ready reports whether /readyz answers 200: the database answers with its
// migrations applied, or the mode keeps none.
func (s *Server) Ready(ctx context.Context) bool { return s.readiness(ctx).Status == "ready" }

// readiness is what /readyz answers.
func (s *Server) readiness(ctx context.Context) readiness {
	rd := readiness{Status: "ready", Database: "none", DevMode: s.cfg.DevMode, Services: s.cfg.ServiceStates()}
	if s.cfg.AppStates != nil {
		rd.Apps = s.cfg.AppStates()
	}
	if db := s.cfg.Database; db != nil {
		rd.Database = "ok"
		v, dirty, err := db.MigrationVersion(ctx)
		if err == nil {
			err = db.Ping(ctx)
		}
		rd.MigrationVersion = v
		if err != nil || dirty || v == 0 {
			rd.Status, rd.Database = "unavailable", "unavailable"
			if err != nil {
				s.cfg.Logger.WarnContext(ctx, "readiness: database check failed", "err", err)
			}
		}
	}
	return rd
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	// Set rather than left to net/http, which sends a body this long in
	// chunks: HEAD then tells the length too.
	w.Header().Set("Content-Length", strconv.Itoa(len(s.cfg.OpenAPI)))
	w.Write(s.cfg.OpenAPI)
}
