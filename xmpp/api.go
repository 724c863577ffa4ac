package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api/client"
)

// API is what p2xmpp asks of p2http. Failures are an *HTTPError for an
// answer other than success, an *UnreachableError when no answer came, or
// another error for an answer that could not be read.
type API interface {
	// Info returns the XMPP address p2http hands out to phones.
	Info(ctx context.Context) (jid string, err error)
	// Register registers a phone (the app is the local part of the address
	// the command was sent to, p2http.DefaultApp for the component's own;
	// the account is the sender's bare JID) and returns its node and
	// secret, and the jid p2http told the phone.
	Register(ctx context.Context, req p2http.RegisterRequest) (p2http.Registered, error)
	// Unregister removes a phone's registration.
	Unregister(ctx context.Context, req p2http.UnregisterRequest) error
	// Push wakes the phone behind a node.
	Push(ctx context.Context, req p2http.PushRequest) error
}

// DefaultTimeout bounds each call on p2http: above p2http's own push deadline
// (about 10 s), well under ejabberd's 32 s IQ timeout.
const DefaultTimeout = 20 * time.Second

// maxAnswerBytes bounds what is read of an answer of p2http.
const maxAnswerBytes = 1 << 20

// HTTPConfig configures an HTTPAPI.
type HTTPConfig struct {
	// BaseURL is p2http's base URL, such as http://127.0.0.1:8080.
	BaseURL string
	// Token is the bearer token for p2http's registration endpoints; empty
	// sends none.
	Token string
	// Timeout bounds each call; zero means DefaultTimeout.
	Timeout time.Duration
	// Transport carries the requests; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// HTTPAPI is the API over HTTP, through the client generated from
// openapi.yaml.
type HTTPAPI struct {
	c *client.ClientWithResponses
	// apps records whether p2http's info lists apps: a p2http from before
	// apps refuses the app field (an unknown field is a 400, which servers
	// take as permanent), so it is only sent to one that knows it.
	apps atomic.Bool
}

var _ API = (*HTTPAPI)(nil)

// NewHTTPAPI returns an API calling p2http at cfg.BaseURL.
func NewHTTPAPI(cfg HTTPConfig) (*HTTPAPI, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
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
	c, err := client.NewClientWithResponses(strings.TrimSuffix(cfg.BaseURL, "/"), opts...)
	if err != nil {
		return nil, err
	}
	return &HTTPAPI{c: c}, nil
}

// Info implements API.
func (a *HTTPAPI) Info(ctx context.Context) (string, error) {
	res, err := a.c.GetInfoWithResponse(ctx)
	if err != nil {
		return "", callError(err)
	}
	if res.StatusCode() != http.StatusOK {
		return "", answerError(res.HTTPResponse, res.Body)
	}
	if res.JSON200 == nil || res.JSON200.Jid == "" {
		return "", errors.New("p2http's info holds no jid")
	}
	a.apps.Store(res.JSON200.Apps != nil)
	return res.JSON200.Jid, nil
}

// Register implements API.
func (a *HTTPAPI) Register(ctx context.Context, r p2http.RegisterRequest) (p2http.Registered, error) {
	app, err := a.appParam(r.App)
	if err != nil {
		return p2http.Registered{}, err
	}
	res, err := a.c.RegisterWithResponse(ctx, client.RegisterRequest{
		App: app, Service: client.Service(r.Service), Account: r.Account, DeviceId: r.DeviceID, Token: r.Token,
	})
	if err != nil {
		return p2http.Registered{}, callError(err)
	}
	reg := res.JSON201
	if res.StatusCode() == http.StatusOK {
		reg = res.JSON200
	}
	if res.StatusCode() != http.StatusOK && res.StatusCode() != http.StatusCreated {
		return p2http.Registered{}, answerError(res.HTTPResponse, res.Body)
	}
	if reg == nil || reg.Node == "" || reg.Secret == "" {
		return p2http.Registered{}, errors.New("p2http's registration answer holds no node or secret")
	}
	return p2http.Registered{JID: reg.Jid, Node: reg.Node, Secret: reg.Secret, Created: res.StatusCode() == http.StatusCreated}, nil
}

// Unregister implements API.
func (a *HTTPAPI) Unregister(ctx context.Context, r p2http.UnregisterRequest) error {
	app, err := a.appParam(r.App)
	if err != nil {
		return err
	}
	res, err := a.c.UnregisterWithResponse(ctx, client.UnregisterRequest{
		App: app, Service: client.Service(r.Service), Account: r.Account, DeviceId: r.DeviceID,
	})
	if err != nil {
		return callError(err)
	}
	if res.StatusCode() != http.StatusNoContent {
		return answerError(res.HTTPResponse, res.Body)
	}
	return nil
}

// Push implements API. It sends important and never a summary: nothing of
// the message leaves p2xmpp.
func (a *HTTPAPI) Push(ctx context.Context, r p2http.PushRequest) error {
	important := r.Important
	app, err := a.appParam(r.App)
	if err != nil {
		return err
	}
	req := client.PushRequest{App: app, Node: r.Node, Secret: r.Secret, Important: &important}
	if r.Domain != "" {
		domain := r.Domain
		req.Domain = &domain
	}
	res, err := a.c.PushWithResponse(ctx, req)
	if err != nil {
		return callError(err)
	}
	if res.StatusCode() != http.StatusOK {
		return answerError(res.HTTPResponse, res.Body)
	}
	return nil
}

// appParam is the optional app of a request: absent for none, and for the
// default app when p2http knows no apps. A further app on such a p2http is
// answered as p2http would answer an app it does not serve.
func (a *HTTPAPI) appParam(app p2http.App) (*client.App, error) {
	if !a.apps.Load() {
		if app.IsDefault() {
			return nil, nil
		}
		return nil, reqErr(outNotFound, "this p2http serves no further apps")
	}
	if app == "" {
		return nil, nil
	}
	c := client.App(app)
	return &c, nil
}

// callError classifies an error of the generated client: no answer at all
// (connection refused or broken, timeout) is an *UnreachableError; an answer
// that did not parse is returned as is.
func callError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &UnreachableError{Err: err}
	}
	return fmt.Errorf("reading p2http's answer: %w", err)
}

// answerError turns an answer other than success into an *HTTPError, with
// p2http's problem document when there is one.
func answerError(res *http.Response, body []byte) error {
	e := &HTTPError{Status: res.StatusCode}
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/problem+json") {
		var p client.Problem
		if json.Unmarshal(body, &p) == nil && p.Status == res.StatusCode {
			e.Type, e.Title = string(p.Type), p.Title
			if p.Detail != nil {
				e.Detail = *p.Detail
			}
			if p.RequestId != nil {
				e.RequestID = *p.RequestId
			}
		}
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
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

type limitedBody struct {
	io.Reader
	io.Closer
}
