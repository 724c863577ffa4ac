package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api/client"
)

// DefaultClientTimeout bounds each call of a Client when
// ClientConfig.Timeout is zero: above p2http's own push deadline (about
// 10 s), so that p2http's answer to a slow push service arrives, and well
// under ejabberd's 32 s IQ timeout, so that p2xmpp answers the XMPP server
// before it gives up.
const DefaultClientTimeout = 20 * time.Second

// maxAnswerBytes bounds what a Client reads of an answer.
const maxAnswerBytes = 1 << 20

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is p2http's base URL, such as http://127.0.0.1:8080.
	BaseURL string
	// Token is the bearer token sent with every request, one of p2http's
	// P2_API_TOKENS; empty sends none. It is never logged.
	Token string
	// Timeout bounds each call; zero means DefaultClientTimeout.
	Timeout time.Duration
	// Transport carries the requests; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// Client is p2http's domain over HTTP: it implements p2http.Registrar,
// p2http.Pusher and p2http.Describer by calling p2http's REST API through
// the client generated from openapi.yaml (api/client), and turns the
// answers back into the domain's results and errors. p2xmpp reaches p2http
// through it. It makes no retries, and is safe for concurrent use.
//
// Its failures are *p2http.Error values. Only p2http's own problem
// documents carry their code: an application/problem+json answer whose type
// is one of openapi.yaml's, with the status p2http answers that type with
// (problemCode). The codes only HTTP knows (405, 413, 415, 421) become
// EINTERNAL. Any other answer, such as a proxy's HTML page, is never
// permanent whatever its status: it is EUNAUTHORIZED for a 401, ERATELIMIT
// for a 429, EUNAVAILABLE for a 503, ETIMEOUT for a 504, and EINTERNAL
// otherwise. No answer at all (the connection refused or broken, the
// timeout passed) is EUNREACHABLE, and a success whose body cannot be read
// is EINTERNAL. The Err of a failure that came with an answer is a
// *ResponseError.
type Client struct {
	c *client.Client
	// apps records whether p2http's info lists apps: a p2http from before
	// apps refuses the app field (an unknown field is a 400, which XMPP
	// servers take as permanent), so it is only sent to one that knows it.
	apps atomic.Bool
}

var (
	_ p2http.Registrar = (*Client)(nil)
	_ p2http.Pusher    = (*Client)(nil)
	_ p2http.Describer = (*Client)(nil)
)

// NewClient returns a Client calling p2http at cfg.BaseURL.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	hc := &http.Client{Timeout: cfg.Timeout, Transport: limitedTransport{tr}}
	opts := []client.ClientOption{client.WithHTTPClient(hc)}
	if cfg.Token != "" {
		bearer := "Bearer " + cfg.Token
		opts = append(opts, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", bearer)
			return nil
		}))
	}
	c, err := client.NewClient(strings.TrimSuffix(cfg.BaseURL, "/"), opts...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Describe implements p2http.Describer (GET /v1/info). Info.Apps is empty
// both when p2http serves no further apps and when it is from before apps;
// the Client tells them apart itself (see Register).
func (c *Client) Describe(ctx context.Context) (p2http.Info, error) {
	rsp, err := c.c.GetInfo(ctx)
	res, err := finish("GET /v1/info", rsp, err, client.ParseGetInfoResponse, http.StatusOK)
	if err != nil {
		return p2http.Info{}, err
	}
	in := res.JSON200
	if in == nil || in.Jid == "" {
		return p2http.Info{}, unreadable("p2http's info holds no jid")
	}
	c.apps.Store(in.Apps != nil)
	info := p2http.Info{JID: in.Jid, Services: services(in.Services)}
	for _, a := range in.Apps {
		info.Apps = append(info.Apps, p2http.AppInfo{Name: p2http.App(a.Name), JID: a.Jid, Services: services(a.Services)})
	}
	return info, nil
}

// Register implements p2http.Registrar (POST /v1/register). The app is
// sent only once Describe has seen p2http's info list apps (a p2http from
// before apps refuses the field with a 400); until then the default app is
// sent as no app, and a further app is ENOTFOUND without a call, as p2http
// answers an app it does not serve.
func (c *Client) Register(ctx context.Context, req p2http.RegisterRequest) (p2http.Registered, error) {
	app, err := c.appParam(req.App)
	if err != nil {
		return p2http.Registered{}, err
	}
	rsp, err := c.c.Register(ctx, client.RegisterRequest{
		App: app, Service: client.Service(req.Service), Account: req.Account, DeviceId: req.DeviceID, Token: req.Token,
	})
	res, err := finish("POST /v1/register", rsp, err, client.ParseRegisterResponse, http.StatusOK, http.StatusCreated)
	if err != nil {
		return p2http.Registered{}, err
	}
	reg := res.JSON200
	if res.StatusCode() == http.StatusCreated {
		reg = res.JSON201
	}
	if reg == nil || reg.Node == "" || reg.Secret == "" {
		return p2http.Registered{}, unreadable("p2http's registration answer holds no node or secret")
	}
	return p2http.Registered{JID: reg.Jid, Node: reg.Node, Secret: reg.Secret, Created: res.StatusCode() == http.StatusCreated}, nil
}

// Unregister implements p2http.Registrar (POST /v1/unregister), with the
// app as Register sends it.
func (c *Client) Unregister(ctx context.Context, req p2http.UnregisterRequest) error {
	app, err := c.appParam(req.App)
	if err != nil {
		return err
	}
	rsp, err := c.c.Unregister(ctx, client.UnregisterRequest{
		App: app, Service: client.Service(req.Service), Account: req.Account, DeviceId: req.DeviceID,
	})
	_, err = finish("POST /v1/unregister", rsp, err, client.ParseUnregisterResponse, http.StatusNoContent)
	return err
}

// Lookup implements p2http.Registrar (GET /v1/registration). The
// registration holds what p2http shows of it: no token, no secret, no
// device hash.
func (c *Client) Lookup(ctx context.Context, node string) (p2http.Registration, error) {
	rsp, err := c.c.GetRegistration(ctx, &client.GetRegistrationParams{Node: node})
	res, err := finish("GET /v1/registration", rsp, err, client.ParseGetRegistrationResponse, http.StatusOK)
	if err != nil {
		return p2http.Registration{}, err
	}
	in := res.JSON200
	if in == nil {
		return p2http.Registration{}, unreadable("p2http's registration info is empty")
	}
	reg := p2http.Registration{
		App: p2http.App(in.App), Service: p2http.Service(in.Service), Domain: in.Domain, Node: node,
		SecretKind: p2http.SecretKind(in.SecretKind),
	}
	if in.PushHistory == client.RegistrationInfoPushHistoryKept {
		reg.PushHistory = p2http.PushHistory{Recorded: true, LastFailureAt: in.LastFailureAt}
		if in.PushCount != nil {
			reg.Pushes = *in.PushCount
		}
		if in.LastPushOutcome != nil {
			reg.LastOutcome = p2http.PushOutcome(*in.LastPushOutcome)
		}
		if in.LastFailureReason != nil {
			reg.LastFailureReason = *in.LastFailureReason
		}
	}
	reg.LastPushAt = in.LastPushAt // also from a p2http that says nothing of the rest
	if in.CreatedAt != nil {
		reg.CreatedAt = *in.CreatedAt
	}
	if in.UpdatedAt != nil {
		reg.UpdatedAt = *in.UpdatedAt
	}
	return reg, nil
}

// Push implements p2http.Pusher (POST /v1/push), with the app as Register
// sends it. It sends important and never a summary: nothing of the message
// leaves the caller. req.Caller is not sent: p2http knows its caller by the
// token. A success whose body is not JSON yields the zero PushResult.
func (c *Client) Push(ctx context.Context, req p2http.PushRequest) (p2http.PushResult, error) {
	app, err := c.appParam(req.App)
	if err != nil {
		return p2http.PushResult{}, err
	}
	important := req.Important
	body := client.PushRequest{App: app, Node: req.Node, Secret: req.Secret, Important: &important}
	if req.Domain != "" {
		domain := req.Domain
		body.Domain = &domain
	}
	rsp, err := c.c.Push(ctx, body)
	res, err := finish("POST /v1/push", rsp, err, client.ParsePushResponse, http.StatusOK)
	if err != nil {
		return p2http.PushResult{}, err
	}
	var out p2http.PushResult
	if r := res.JSON200; r != nil {
		out = p2http.PushResult{Service: p2http.Service(r.Service), Priority: p2http.Priority(r.Priority), Coalesced: r.Coalesced}
	}
	return out, nil
}

// appParam is the optional app of a request: absent for none, and for the
// default app when p2http knows no apps. A further app on such a p2http is
// answered as p2http would answer an app it does not serve.
func (c *Client) appParam(app p2http.App) (*client.App, error) {
	if !c.apps.Load() {
		if app.IsDefault() {
			return nil, nil
		}
		return nil, p2http.Errorf(p2http.ENOTFOUND, "this p2http serves no further apps")
	}
	if app == "" {
		return nil, nil
	}
	a := client.App(app)
	return &a, nil
}

// services converts the generated client's services.
func services(in []client.Service) []p2http.Service {
	if len(in) == 0 {
		return nil
	}
	out := make([]p2http.Service, len(in))
	for i, s := range in {
		out[i] = p2http.Service(s)
	}
	return out
}

// ResponseError is an answer of p2http (or of whatever answered in its
// place) other than the call's success: the Err of a Client's
// *p2http.Error. It holds nothing of the body but p2http's problem type
// and request id.
type ResponseError struct {
	Status int
	// Type is the problem type, such as urn:p2http:problem:not-found; ""
	// when the answer was not p2http's own problem document.
	Type string
	// RequestID is p2http's id of the request, as in p2http's log; "" when
	// the answer gave none.
	RequestID string
}

// Error implements error.
func (e *ResponseError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("HTTP %d, not a problem document of p2http's", e.Status)
	}
	s := fmt.Sprintf("p2http answered %d %s", e.Status, strings.TrimPrefix(e.Type, ProblemTypePrefix))
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// LogValue implements slog.LogValuer: the attributes a log line about the
// failure carries, http_status and, when there is one, request_id.
func (e *ResponseError) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("http_status", e.Status)}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	return slog.GroupValue(attrs...)
}

// foreignCodes are the codes of answers that are not p2http's own problem
// documents, by status: only what any server means by the status, and
// never a permanent code. Any other status is EINTERNAL.
var foreignCodes = map[int]string{
	http.StatusUnauthorized:       p2http.EUNAUTHORIZED,
	http.StatusTooManyRequests:    p2http.ERATELIMIT,
	http.StatusServiceUnavailable: p2http.EUNAVAILABLE,
	http.StatusGatewayTimeout:     p2http.ETIMEOUT,
}

// finish ends one call op of the generated client, which answered rsp or
// failed with err: no answer is EUNREACHABLE (callError), an answer of a
// status other than ok's an answerError, and a success is read by parse,
// the generated client's, which failing is EINTERNAL.
func finish[R any](op string, rsp *http.Response, err error, parse func(*http.Response) (R, error), ok ...int) (R, error) {
	var zero R
	if err != nil {
		return zero, callError(op, err)
	}
	if !slices.Contains(ok, rsp.StatusCode) {
		body, _ := io.ReadAll(rsp.Body) // what could be read of it
		rsp.Body.Close()
		return zero, answerError(rsp, body)
	}
	res, err := parse(rsp)
	if err != nil {
		return zero, &p2http.Error{Code: p2http.EINTERNAL, Message: "p2http's answer could not be read",
			Err: fmt.Errorf("%s: %w", op, err)}
	}
	return res, nil
}

// answerError turns an answer other than the call's success into a
// *p2http.Error, as Client's documentation says.
func answerError(res *http.Response, body []byte) error {
	re := &ResponseError{Status: res.StatusCode}
	e := &p2http.Error{Err: re}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/problem+json") {
		var p client.Problem
		if json.Unmarshal(body, &p) == nil && p.Status == res.StatusCode {
			if code, ok := problemCode(string(p.Type), p.Status); ok {
				re.Type = string(p.Type)
				e.Code = code
				if p.RequestId != nil {
					re.RequestID = *p.RequestId
				}
				if p.Detail != nil {
					e.Message = *p.Detail
				}
				if p.Field != nil {
					e.Field = *p.Field
				}
				return e
			}
		}
	}
	e.Code = foreignCodes[res.StatusCode]
	if e.Code == "" {
		e.Code = p2http.EINTERNAL
	}
	return e
}

// callError is an error of the generated client before any answer: no
// answer at all (the connection refused or broken, the timeout passed, ctx
// done) is EUNREACHABLE, and a request that could not be built EINTERNAL.
// op names the call without its query, which may hold a node: a *url.Error
// names the whole URL.
func callError(op string, err error) error {
	code := p2http.EINTERNAL
	var ue *url.Error
	if errors.As(err, &ue) {
		code, err = p2http.EUNREACHABLE, ue.Err
	}
	return &p2http.Error{Code: code, Err: fmt.Errorf("%s: %w", op, err)}
}

// unreadable is a success of p2http's that lacks what it must hold.
func unreadable(msg string) error {
	return &p2http.Error{Code: p2http.EINTERNAL, Message: msg}
}

// limitedTransport bounds the answers read.
type limitedTransport struct {
	rt http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = limitedBody{Reader: io.LimitReader(res.Body, maxAnswerBytes), Closer: res.Body}
	return res, nil
}

// limitedBody is an answer's body cut at maxAnswerBytes.
type limitedBody struct {
	io.Reader
	io.Closer
}
