package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
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

// problems is the one table from domain error codes to HTTP. p2xmpp maps
// these statuses to stanza errors in its own single table.
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
	s.writeProblem(w, r, kind.status, kind.name, kind.title, p2http.ErrorMessage(err), p2http.ErrorField(err))
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, status int, name, title, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(problemBody{
		Type: ProblemTypePrefix + name, Title: title, Status: status, Detail: detail,
		Instance: r.URL.Path, RequestID: requestIDFrom(r), Field: field,
	})
}

// json writes v with status.
func (s *Server) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads one JSON object into v, refusing unknown fields, trailing
// data and bodies over the limit. On failure it writes the problem and
// returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		s.writeProblem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("the request body is limited to %d bytes", s.cfg.MaxBodyBytes), "")
	case errors.Is(err, io.EOF):
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "a JSON request body is required"))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "the request body is not valid JSON"))
	case errors.As(err, &typeErr):
		s.problem(w, r, p2http.Invalid(typeErr.Field, "field %s must be of JSON type %s", typeErr.Field, jsonType(typeErr.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		s.problem(w, r, p2http.Invalid(field, "unknown field %q", field))
	default:
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "the request body must be one JSON object: %s", err))
	}
	return false
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "ptr", "struct", "map":
		return "object"
	case "int", "int64", "uint", "float64":
		return "number"
	}
	return kind
}
