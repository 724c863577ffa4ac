// Package fcm delivers wake-ups through Firebase Cloud Messaging (the FCM
// HTTP v1 API), using the Firebase Admin Go SDK.
//
// A Sender authenticates with a service account: it signs a JWT with the
// account's key, trades it at the account's token_uri for an OAuth2 access
// token, caches that token until shortly before it expires, and sends one
// data-only message per wake-up. Answers are mapped into the domain: nil,
// *p2http.DeadTokenError or *p2http.Error.
//
// Nothing this package returns or logs holds a push token, a key or an
// access token.
package fcm

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/retryafter"
)

// Scope is the OAuth2 scope a Sender asks for: sending FCM messages only.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// Config configures a Sender.
type Config struct {
	// CredentialsJSON is a service-account key file (JSON). Its project_id
	// names the Firebase project; its token_uri is where access tokens are
	// fetched.
	CredentialsJSON []byte
	// Endpoint is the base URL of the FCM HTTP v1 API including "/v1", such
	// as "https://fcm.googleapis.com/v1". Empty means Google's.
	Endpoint string
	// HTTPClient is the base client for both the OAuth2 token fetch and the
	// FCM calls: its Transport, Timeout, CheckRedirect and Jar are used (the
	// Timeout bounds a send only when its context has no deadline).
	// Nil means a client with HTTP/2, connection reuse and a 30 s timeout.
	HTTPClient *http.Client
}

// Sender sends wake-ups through FCM. It is safe for concurrent use.
type Sender struct {
	client   *messaging.Client
	tokens   oauth2.TokenSource
	project  string
	attempts *counting
	// timeout bounds a send whose context has no deadline (the base
	// client's Timeout).
	timeout time.Duration
	// fresh is when, in unix nanoseconds, the access token fetched last
	// gets close enough to its expiry for token to ask the token source
	// again; until then a send skips that check.
	fresh atomic.Int64
}

var _ p2http.Sender = (*Sender)(nil)

// serviceAccount holds the fields of a service-account key file New checks
// before handing the file to the OAuth2 library.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// New returns a Sender for the project of cfg.CredentialsJSON. It checks the
// credentials but does not contact Google: a first access token is fetched
// on the first Send. ctx carries no deadline into the Sender: only its
// values are kept, for the token fetches.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	if len(cfg.CredentialsJSON) == 0 {
		return nil, errors.New("fcm: no service-account credentials")
	}
	var sa serviceAccount
	if err := json.Unmarshal(cfg.CredentialsJSON, &sa); err != nil {
		return nil, fmt.Errorf("fcm: service-account credentials are not valid JSON: %w", err)
	}
	if sa.Type != string(google.ServiceAccount) {
		return nil, fmt.Errorf("fcm: credentials of type %q, want %q", sa.Type, google.ServiceAccount)
	}
	if sa.ProjectID == "" {
		return nil, errors.New("fcm: service-account credentials have no project_id")
	}
	if sa.ClientEmail == "" {
		return nil, errors.New("fcm: service-account credentials have no client_email")
	}
	if err := checkPrivateKey(sa.PrivateKey); err != nil {
		return nil, err
	}

	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("fcm: endpoint must be an absolute http(s) URL")
		}
	}

	base := cfg.HTTPClient
	if base == nil {
		base = defaultHTTPClient()
	}

	// The token source keeps this context for every later token fetch: drop
	// its deadline and cancellation, and route the fetch through base.
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, base)
	creds, err := google.CredentialsFromJSONWithType(tctx, cfg.CredentialsJSON, google.ServiceAccount, Scope)
	if err != nil {
		return nil, fmt.Errorf("fcm: service-account credentials: %w", err)
	}

	inner := base.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	attempts := &counting{next: inner}
	authed := &http.Client{
		// The SDK retries 503 and network errors on its own; counting the
		// round trips here shows those attempts too.
		Transport: &oauth2.Transport{Source: creds.TokenSource, Base: attempts},
		// No Timeout: it would arm a timer and a context per request. Send
		// bounds a call by its context, and by base.Timeout when that
		// context has no deadline.
		CheckRedirect: base.CheckRedirect,
		Jar:           base.Jar,
	}
	opts := []option.ClientOption{option.WithHTTPClient(authed)}
	if endpoint != "" {
		// The SDK posts to endpoint + "/projects/<id>/messages:send"; a URL
		// with a scheme is taken verbatim by google.golang.org/api.
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: sa.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	return &Sender{client: client, tokens: creds.TokenSource, project: sa.ProjectID, attempts: attempts, timeout: base.Timeout}, nil
}

// counting counts the requests sent to FCM, retries included.
type counting struct {
	next http.RoundTripper
	n    atomic.Uint64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// Attempts returns how many requests were sent to FCM, the SDK's own
// retries included.
func (s *Sender) Attempts() uint64 { return s.attempts.n.Load() }

// checkPrivateKey fails early on a key the token fetch could not sign with.
func checkPrivateKey(key string) error {
	if key == "" {
		return errors.New("fcm: service-account credentials have no private_key")
	}
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return errors.New("fcm: the private_key of the service-account credentials is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errors.New("fcm: the private_key of the service-account credentials does not parse")
}

// MaxConnsDialling bounds the connections to FCM the default client dials
// at once (http.Transport's MaxConnsPerHost).
//
// A connection carries as many requests at once as FCM allows HTTP/2
// streams; when every stream of every connection is taken, net/http dials
// another connection for each request that finds no free stream, all at
// once: a burst of a thousand wake-ups opened hundreds of TLS connections
// (and handshakes) where a few would do. With this bound, requests beyond
// the free streams wait for the few connections being dialled and share
// them, and the pool still grows, a few connections at a time, to what the
// load needs.
const MaxConnsDialling = 2

// defaultHTTPClient returns a client with HTTP/2, a pool of reused
// connections and a bound on the connections dialled at once.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = true
	t.MaxIdleConnsPerHost = 32
	t.MaxConnsPerHost = MaxConnsDialling
	t.IdleConnTimeout = 5 * time.Minute
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// ProjectID returns the Firebase project the Sender sends for.
func (s *Sender) ProjectID() string { return s.project }

// Message returns the FCM message for w, as p2 sends it: data-only, one
// key "account" holding the device hash, collapsed on the first six
// characters of the hash, with no notification block. Unlike p2 it also
// sets the Android priority: "high" for important wake-ups, else "normal".
func Message(w p2http.Wakeup) *messaging.Message {
	collapse := w.Device
	if len(collapse) > 6 {
		collapse = collapse[:6]
	}
	priority := "normal"
	if p2http.PriorityOf(w) == p2http.PriorityHigh {
		priority = "high"
	}
	return &messaging.Message{
		Token: w.Token,
		Data:  map[string]string{"account": w.Device},
		Android: &messaging.AndroidConfig{
			CollapseKey: collapse,
			Priority:    priority,
		},
	}
}

// Send sends one wake-up. It returns nil when FCM accepted the message, a
// *p2http.DeadTokenError when FCM says the token will never work again
// (UNREGISTERED, SENDER_ID_MISMATCH, or not a valid registration token),
// and otherwise a *p2http.Error: EUNAVAILABLE for quota, server and network
// trouble (with RetryAfter when FCM gave one), EUPSTREAM when FCM or the
// token endpoint refused our credentials or our message, ETIMEOUT when ctx
// expired.
//
// The SDK itself retries network errors and 503 answers up to four times,
// with backoff, within ctx.
func (s *Sender) Send(ctx context.Context, w p2http.Wakeup) error {
	if w.Token == "" {
		return p2http.Errorf(p2http.EINVALID, "no FCM registration token")
	}
	if _, ok := ctx.Deadline(); !ok && s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	// Fetch (or reuse) the access token first: a failing token fetch inside
	// the SDK's transport would be retried as a network error and lose its
	// meaning.
	if err := s.token(ctx); err != nil {
		return err
	}
	_, err := s.client.Send(ctx, Message(w))
	if err == nil {
		return nil
	}
	return classify(ctx, err)
}

// tokenMargin is how long before its expiry the access token fetched last
// stops being trusted without asking the token source, which fetches a
// new one 10 s before.
const tokenMargin = 30 * time.Second

// token makes sure a valid access token is cached, fetching one if needed.
// The fetch runs in a goroutine of its own so that ctx can end the wait;
// while the token fetched last is far from its expiry, nothing is checked.
func (s *Sender) token(ctx context.Context) error {
	if time.Now().UnixNano() < s.fresh.Load() {
		return nil
	}
	type fetched struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan fetched, 1)
	go func() {
		tok, err := s.tokens.Token()
		done <- fetched{tok, err}
	}()
	var f fetched
	select {
	case f = <-done:
	case <-ctx.Done():
		return ctxError(ctx.Err(), "while fetching an access token")
	}
	err := f.err
	if err == nil {
		if f.tok != nil && !f.tok.Expiry.IsZero() {
			s.fresh.Store(f.tok.Expiry.Add(-tokenMargin).UnixNano())
		}
		return nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		cause := &tokenEndpointError{status: status, code: re.ErrorCode}
		if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
			return &p2http.Error{
				Code:       p2http.EUNAVAILABLE,
				Message:    "the OAuth2 token endpoint is unavailable",
				RetryAfter: retryafter.Parse(re.Response.Header.Get("Retry-After"), time.Now()),
				Err:        cause,
			}
		}
		return &p2http.Error{
			Code:    p2http.EUPSTREAM,
			Message: "the OAuth2 token endpoint rejected our FCM credentials",
			Err:     cause,
		}
	}
	if ctx.Err() != nil {
		return ctxError(ctx.Err(), "while fetching an access token")
	}
	// A network failure or an unreadable answer. The message of the OAuth2
	// library names the token URL and the network error; it holds no token.
	return &p2http.Error{
		Code:    p2http.EUNAVAILABLE,
		Message: "could not fetch an OAuth2 access token for FCM",
		Err:     err,
	}
}

// tokenEndpointError is the cause kept when the token endpoint refused us:
// the status and OAuth2 error code only, not the body.
type tokenEndpointError struct {
	status int
	code   string
}

func (e *tokenEndpointError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("token endpoint answered HTTP %d, error %q", e.status, e.code)
	}
	return fmt.Sprintf("token endpoint answered HTTP %d", e.status)
}

// StatusError is the cause kept in a *p2http.Error when FCM answered with
// an error. It holds the HTTP status and FCM's codes only: FCM's message
// text may quote the request, so it is not kept.
type StatusError struct {
	HTTPStatus int    // the HTTP status code
	Status     string // the google.rpc status, such as "INVALID_ARGUMENT"
	ErrorCode  string // the FcmError code, such as "QUOTA_EXCEEDED"; may be empty
}

// Error implements error.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("FCM answered HTTP %d", e.HTTPStatus)
	if e.Status != "" {
		s += ", status " + e.Status
	}
	if e.ErrorCode != "" {
		s += ", error " + e.ErrorCode
	}
	return s
}

// classify maps an error of the SDK's Send into the domain. It must see the
// SDK's own error: the messaging.Is… functions use type assertions.
func classify(ctx context.Context, err error) error {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		// No answer from FCM: a network failure, ctx expiring, or an error
		// of the SDK itself.
		if ctx.Err() != nil {
			return ctxError(ctx.Err(), "while sending to FCM")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return &p2http.Error{Code: p2http.ETIMEOUT, Message: "the FCM request timed out", Err: err}
		}
		if errorutils.IsUnavailable(err) || errorutils.IsDeadlineExceeded(err) || errorutils.IsUnknown(err) {
			// Transport errors: the SDK's text names the URL (project id,
			// no token) and the network error.
			return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "could not reach FCM", Err: err}
		}
		return &p2http.Error{Code: p2http.EINTERNAL, Message: "unexpected error from the FCM client", Err: err}
	}

	cause := &StatusError{HTTPStatus: resp.StatusCode, Status: platformStatus(err), ErrorCode: fcmErrorCode(err)}
	status := resp.StatusCode
	switch {
	case messaging.IsUnregistered(err):
		return &p2http.DeadTokenError{Reason: "UNREGISTERED"}
	case messaging.IsSenderIDMismatch(err):
		return &p2http.DeadTokenError{Reason: "SENDER_ID_MISMATCH"}
	case messaging.IsInvalidArgument(err) || errorutils.IsInvalidArgument(err):
		if strings.Contains(strings.ToLower(err.Error()), "not a valid fcm registration token") {
			return &p2http.DeadTokenError{Reason: "INVALID_ARGUMENT: not a valid FCM registration token"}
		}
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected our message as invalid", Err: cause}
	case messaging.IsQuotaExceeded(err) || errorutils.IsResourceExhausted(err) || status == http.StatusTooManyRequests:
		return &p2http.Error{
			Code:       p2http.EUNAVAILABLE,
			Message:    "FCM quota exceeded; try again later",
			RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()),
			Err:        cause,
		}
	case messaging.IsThirdPartyAuthError(err):
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM could not authenticate to APNs or Web Push with the project's credentials", Err: cause}
	case errorutils.IsUnauthenticated(err) || errorutils.IsPermissionDenied(err) ||
		status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected our credentials", Err: cause}
	case messaging.IsUnavailable(err) || messaging.IsInternal(err) ||
		errorutils.IsUnavailable(err) || errorutils.IsInternal(err) || status >= 500:
		return &p2http.Error{
			Code:       p2http.EUNAVAILABLE,
			Message:    "FCM is unavailable; try again later",
			RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()),
			Err:        cause,
		}
	default:
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected the request", Err: cause}
	}
}

// platformStatus returns the google.rpc status the SDK read from the answer.
func platformStatus(err error) string {
	for _, c := range []struct {
		is   func(error) bool
		name string
	}{
		{errorutils.IsInvalidArgument, "INVALID_ARGUMENT"},
		{errorutils.IsFailedPrecondition, "FAILED_PRECONDITION"},
		{errorutils.IsOutOfRange, "OUT_OF_RANGE"},
		{errorutils.IsUnauthenticated, "UNAUTHENTICATED"},
		{errorutils.IsPermissionDenied, "PERMISSION_DENIED"},
		{errorutils.IsNotFound, "NOT_FOUND"},
		{errorutils.IsConflict, "CONFLICT"},
		{errorutils.IsAborted, "ABORTED"},
		{errorutils.IsAlreadyExists, "ALREADY_EXISTS"},
		{errorutils.IsResourceExhausted, "RESOURCE_EXHAUSTED"},
		{errorutils.IsCancelled, "CANCELLED"},
		{errorutils.IsDataLoss, "DATA_LOSS"},
		{errorutils.IsUnknown, "UNKNOWN"},
		{errorutils.IsInternal, "INTERNAL"},
		{errorutils.IsUnavailable, "UNAVAILABLE"},
		{errorutils.IsDeadlineExceeded, "DEADLINE_EXCEEDED"},
	} {
		if c.is(err) {
			return c.name
		}
	}
	return ""
}

// fcmErrorCode returns the FcmError code the SDK read from the answer.
func fcmErrorCode(err error) string {
	for _, c := range []struct {
		is   func(error) bool
		name string
	}{
		{messaging.IsUnregistered, "UNREGISTERED"},
		{messaging.IsSenderIDMismatch, "SENDER_ID_MISMATCH"},
		{messaging.IsInvalidArgument, "INVALID_ARGUMENT"},
		{messaging.IsQuotaExceeded, "QUOTA_EXCEEDED"},
		{messaging.IsThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"},
		{messaging.IsUnavailable, "UNAVAILABLE"},
		{messaging.IsInternal, "INTERNAL"},
	} {
		if c.is(err) {
			return c.name
		}
	}
	return ""
}

// ctxError maps an expired or cancelled context.
func ctxError(err error, during string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &p2http.Error{Code: p2http.ETIMEOUT, Message: "the deadline passed " + during, Err: err}
	}
	return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "the send was cancelled " + during, Err: err}
}
