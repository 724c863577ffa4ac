package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/p2http/p2http"
)

// ProblemTypePrefix starts every problem type; the rest is stable and
// documented in openapi.yaml.
const ProblemTypePrefix = "urn:p2http:problem:"

// problemKind is how one domain error code looks over HTTP.
type problemKind struct {
	status int
	name   string // the problem type after ProblemTypePrefix
	title  string
}

// Codes of the failures that only HTTP knows: the request's framing rather
// than its meaning. They never come from the domain, and are answered
// through the same table as its codes.
const (
	codeMethodNotAllowed = "method-not-allowed"     // the path does not take the method
	codeBodyTooLarge     = "body-too-large"         // the body is over Config.MaxBodyBytes
	codeMediaType        = "unsupported-media-type" // the body is not sent as application/json
	codeMisdirected      = "misdirected-request"    // the Host is not one of Config.AllowedHosts
)

// problems is the one table from error codes (the domain's, and the HTTP
// ones above) to HTTP. Client reads it backwards (problemCode) to turn
// p2http's answers into codes again, which p2xmpp maps to stanza errors in
// its own single table.
var problems = map[string]problemKind{
	p2http.EINVALID:       {http.StatusBadRequest, "invalid-request", "Invalid request"},
	p2http.ENOTCONFIGURED: {http.StatusBadRequest, "service-not-configured", "Push service not configured"},
	p2http.EUNAUTHORIZED:  {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	p2http.EFORBIDDEN:     {http.StatusForbidden, "forbidden", "Wrong secret"},
	p2http.ENOTFOUND:      {http.StatusNotFound, "not-found", "Not found"},
	p2http.EGONE:          {http.StatusGone, "token-dead", "Push token dead"},
	p2http.ERATELIMIT:     {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	p2http.EINTERNAL:      {http.StatusInternalServerError, "internal", "Internal error"},
	p2http.EUPSTREAM:      {http.StatusBadGateway, "upstream-rejected", "Push service rejected the request"},
	p2http.EUNAVAILABLE:   {http.StatusServiceUnavailable, "unavailable", "Temporarily unavailable"},
	p2http.ETIMEOUT:       {http.StatusGatewayTimeout, "timeout", "Deadline exceeded"},

	codeMethodNotAllowed: {http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"},
	codeBodyTooLarge:     {http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"},
	codeMediaType:        {http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	codeMisdirected:      {http.StatusMisdirectedRequest, "misdirected-request", "Misdirected request"},
}

// problemCodes maps each problem type of the table back to its code.
var problemCodes = func() map[string]string {
	m := make(map[string]string, len(problems))
	for code, kind := range problems {
		m[ProblemTypePrefix+kind.name] = code
	}
	return m
}()

// problemCode returns the domain error code of an answer with status whose
// problem document has type typ, and false when no row of the table has
// that type and that status: the answer is then not p2http's own. The codes
// only HTTP knows come back as EINTERNAL: they mean that the caller and
// p2http are out of step, which the domain has no other word for.
func problemCode(typ string, status int) (string, bool) {
	code, ok := problemCodes[typ]
	if !ok || problems[code].status != status {
		return "", false
	}
	switch code {
	case codeMethodNotAllowed, codeBodyTooLarge, codeMediaType, codeMisdirected:
		return p2http.EINTERNAL, true
	}
	return code, true
}

// problemBody is an RFC 9457 problem document.
type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Field     string `json:"field,omitempty"`
}

// problem writes err as a problem document. The cause of a 5xx is logged
// in the request's line (logRequests); callers only see the caller-safe
// message.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, err error) {
	code := p2http.ErrorCode(err)
	kind, ok := problems[code]
	if !ok {
		kind = problems[p2http.EINTERNAL]
	}
	if kind.status >= 500 {
		if info := requestInfoFrom(r); info != nil {
			info.code, info.err = code, err
		} else { // outside the router's middleware: no request line to carry it
			s.cfg.Logger.ErrorContext(r.Context(), "request failed", "code", code, "err", err)
		}
	}
	if kind.status == http.StatusTooManyRequests || kind.status >= http.StatusBadGateway {
		// Every temporary failure says when to come back.
		retry := p2http.RetryAfter(err)
		if retry < time.Second {
			retry = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	if kind.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="p2http"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(kind.status)
	json.NewEncoder(w).Encode(problemBody{
		Type: ProblemTypePrefix + kind.name, Title: kind.title, Status: kind.status, Detail: p2http.ErrorMessage(err),
		Instance: r.URL.Path, RequestID: requestIDFrom(r), Field: p2http.ErrorField(err),
	})
}

// json writes v with status.
func (s *Server) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
