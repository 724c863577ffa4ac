// Package fcm delivers wake-ups through Firebase Cloud Messaging, the FCM
// HTTP v1 API.
//
// A Sender authenticates with a service account: golang.org/x/oauth2/google
// signs a JWT with the account's key and trades it at the account's
// token_uri for an OAuth2 access token, which the Sender reuses until
// shortly before it expires. Each wake-up is one data-only message, posted
// to projects/<id>/messages:send. Answers are mapped into the domain: nil,
// *p2http.DeadTokenError or *p2http.Error.
//
// The package speaks the v1 API itself rather than through the Firebase
// Admin SDK: p2http sends one fixed kind of message, and the SDK's request
// building (reflection-based JSON, a request wrapper, a full read of every
// answer) was a sixth of the CPU of a push, and its dependencies (gRPC,
// OpenTelemetry, protobuf) a third of the binary. The SDK's behaviour that
// matters is kept: the same request body, the same retries (503 answers and
// network errors, up to four times, with backoff) and the same error codes.
//
// Nothing this package returns or logs holds a push token, a key or an
// access token.
package fcm

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/deadburst"
	"github.com/p2http/p2http/internal/retryafter"
	"github.com/p2http/p2http/internal/sharedheader"
)

// Scope is the OAuth2 scope a Sender asks for: sending FCM messages only.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// DefaultEndpoint is the base URL of Google's FCM HTTP v1 API.
const DefaultEndpoint = "https://fcm.googleapis.com/v1"

// Config configures a Sender.
type Config struct {
	// CredentialsJSON is a service-account key file (JSON). Its project_id
	// names the Firebase project; its token_uri is where access tokens are
	// fetched.
	CredentialsJSON []byte
	// Endpoint is the base URL of the FCM HTTP v1 API including "/v1", such
	// as "https://fcm.googleapis.com/v1". Empty means DefaultEndpoint.
	Endpoint string
	// HTTPClient is the base client for both the OAuth2 token fetch and the
	// FCM calls: its Transport, Timeout, CheckRedirect and Jar are used (the
	// Timeout bounds a send only when its context has no deadline).
	// Nil means a client with HTTP/2, connection reuse and a 30 s timeout.
	HTTPClient *http.Client
}

// Sender sends wake-ups through FCM. It is safe for concurrent use.
type Sender struct {
	client  *sharedheader.Client
	project string
	// tokens fetches access tokens and keeps the last one; renew makes a
	// new one, with nothing kept, when FCM refused the token it had.
	mu     sync.Mutex
	tokens oauth2.TokenSource // guarded by mu
	renew  func() (oauth2.TokenSource, error)
	// request is a request to where messages are posted, with no context,
	// header or body, copied by every post and never written.
	request *http.Request
	// attempts counts the requests sent to FCM, retries included.
	attempts atomic.Uint64
	// auth is the Authorization header of the access token fetched last,
	// and until when it can be used without asking the token source.
	auth atomic.Pointer[authHeader]
	// otherProject tells one token of another project (a dead token) from
	// credentials of another project than the app's (deadburst).
	otherProject deadburst.Detector
}

// authHeader is an access token ready to be sent.
type authHeader struct {
	value string    // "Bearer <token>"
	fresh time.Time // until when it is used without asking the token source
	// header is the header of every request sent with this token. Requests
	// in flight share it, so it is never written once built.
	header http.Header
}

// newAuthHeader returns the authHeader of an access token.
func newAuthHeader(accessToken string) *authHeader {
	value := "Bearer " + accessToken
	return &authHeader{value: value, header: http.Header{
		"Authorization": {value},
		"Content-Type":  {"application/json"},
		// The error format the Firebase SDK asks for: a google.rpc status
		// and FcmError details.
		"X-Goog-Api-Format-Version": {"2"},
	}}
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
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("fcm: endpoint must be an absolute http(s) URL")
	}

	base := cfg.HTTPClient
	if base == nil {
		base = defaultHTTPClient()
	}

	// The token source keeps this context for every later token fetch: drop
	// its deadline and cancellation, and route the fetch through base.
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, base)
	renew := func() (oauth2.TokenSource, error) {
		creds, err := google.CredentialsFromJSONWithType(tctx, cfg.CredentialsJSON, google.ServiceAccount, Scope)
		if err != nil {
			return nil, fmt.Errorf("fcm: service-account credentials: %w", err)
		}
		return creds.TokenSource, nil
	}
	tokens, err := renew()
	if err != nil {
		return nil, err
	}
	postURL := endpoint + "/projects/" + url.PathEscape(sa.ProjectID) + "/messages:send"
	request, err := http.NewRequest(http.MethodPost, postURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fcm: endpoint: %w", err)
	}
	return &Sender{
		request: request,
		// Send bounds a call by its context, and by base.Timeout when that
		// context has no deadline.
		client:  sharedheader.New(base),
		tokens:  tokens,
		renew:   renew,
		project: sa.ProjectID,
	}, nil
}

// Attempts returns how many requests were sent to FCM, retries included.
func (s *Sender) Attempts() uint64 { return s.attempts.Load() }

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

// Message is the FCM message of a wake-up: the fields of the v1 API's
// Message resource that p2http sets. It is the one representation of what
// p2http sends FCM: Send encodes it with encoding/json (RequestBody), and
// the tests' fake FCM (internal/fake) decodes what it receives into it.
type Message struct {
	Token   string        `json:"token"`
	Data    Data          `json:"data"`
	Android AndroidConfig `json:"android"`
}

// Data is the data of a wake-up, the message's only payload: the device
// hash, which tells the phone which of its accounts to wake.
type Data struct {
	Account string `json:"account"`
}

// AndroidConfig is the v1 API's AndroidConfig, as far as p2http sets it.
type AndroidConfig struct {
	CollapseKey string `json:"collapse_key,omitempty"`
	Priority    string `json:"priority"` // "normal" or "high"
}

// NewMessage returns the FCM message for w, as p2 sends it: data-only, one
// key "account" holding the device hash, collapsed on the first six
// characters of the hash, with no notification block. Unlike p2 it also
// sets the Android priority: "high" for important wake-ups, else "normal".
func NewMessage(w p2http.Wakeup) Message {
	return Message{
		Token:   w.Token,
		Data:    Data{Account: w.Device},
		Android: AndroidConfig{CollapseKey: collapseKey(w), Priority: priority(w)},
	}
}

// Request is the body of a messages:send request.
type Request struct {
	Message Message `json:"message"`
	// ValidateOnly asks FCM to check the request, the token included,
	// without delivering the message: the v1 API's dry run, which
	// firebase-admin-go's SendDryRun sends. Only SendDryRun sets it.
	ValidateOnly bool `json:"validate_only,omitempty"`
}

// collapseKey is a wake-up's collapse key: the first six characters of the
// device hash, as p2 sends it.
func collapseKey(w p2http.Wakeup) string {
	if len(w.Device) > 6 {
		return w.Device[:6]
	}
	return w.Device
}

// priority is a wake-up's Android priority: "high" for important ones.
func priority(w p2http.Wakeup) string {
	if p2http.PriorityOf(w) == p2http.PriorityHigh {
		return "high"
	}
	return "normal"
}

// RequestBody returns the body of the messages:send request for w:
// Request{NewMessage(w)} as encoding/json writes it, which is what the
// Firebase Admin SDK sent.
//
// It was written by hand, without encoding/json, until issue 19. With
// encoding/json, fcm BenchmarkRequestBody takes about 0.5 µs of CPU, 240
// bytes and 2 allocations a body, against 0.06 µs and none by hand; fcm
// BenchmarkSend allocates one object more and 50 bytes fewer per send (the
// body's buffer is the encoder's), and its CPU per send did not move: 82.6
// µs either way, medians of 8 rounds alternated, spread 68 to 91 µs. Half a
// microsecond is at most 1 % of a push's 45 to 100 µs of p2http CPU
// (docs/performance.md, change 24).
func RequestBody(w p2http.Wakeup) []byte {
	b, _ := json.Marshal(Request{Message: NewMessage(w)}) // strings always encode
	return b
}

// DryRunBody returns the body of a dry run of w (SendDryRun): RequestBody
// with validate_only set.
func DryRunBody(w p2http.Wakeup) []byte {
	b, _ := json.Marshal(Request{Message: NewMessage(w), ValidateOnly: true}) // strings always encode
	return b
}

// The FCM v1 API's retries, as the Firebase Admin SDK does them: 503
// answers and network errors are retried up to maxRetries times, at once
// the first time and then after 1, 2 and 4 s, or after the Retry-After FCM
// gave when that is longer; a Retry-After beyond maxRetryDelay is not
// waited for.
const (
	maxRetries    = 4
	maxRetryDelay = 2 * time.Minute
)

// retryDelay is the backoff before retry number n+1 (n retries done).
func retryDelay(n int) time.Duration {
	if n == 0 {
		return 0
	}
	return time.Duration(1<<(n-1)) * time.Second
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// Send sends one wake-up. It returns nil when FCM accepted the message, a
// *p2http.DeadTokenError when FCM says the token will never work again
// (UNREGISTERED, or not a valid registration token; SENDER_ID_MISMATCH when
// isolated: a burst of it is a misconfiguration, EUPSTREAM, see judge),
// and otherwise a *p2http.Error: EUNAVAILABLE for quota, server and network
// trouble (with RetryAfter when FCM gave one), EUPSTREAM when FCM or the
// token endpoint refused our credentials or our message, ETIMEOUT when ctx
// expired.
//
// Network errors and 503 answers are retried up to four times, with
// backoff, within ctx. When FCM refuses the access token (401
// UNAUTHENTICATED: revoked, or expired early), the token is dropped and the
// message sent once more with a new one.
func (s *Sender) Send(ctx context.Context, w p2http.Wakeup) error {
	return s.send(ctx, w, RequestBody)
}

// SendDryRun is Send with validate_only set (DryRunBody): FCM checks the
// credentials, the project, the message and the token, and answers as
// Send's would be answered, but delivers nothing. It is what
// firebase-admin-go's SendDryRun does, and what p2http doctor asks to
// learn whether the project accepts a token.
func (s *Sender) SendDryRun(ctx context.Context, w p2http.Wakeup) error {
	return s.send(ctx, w, DryRunBody)
}

// Authenticate fetches an access token, as the first Send would, and
// returns the error Send would return when that fails: EUPSTREAM when the
// token endpoint refused the service account, EUNAVAILABLE when it could
// not be reached. A token it fetches is kept for the sends that follow.
func (s *Sender) Authenticate(ctx context.Context) error {
	ctx, cancel := s.client.WithTimeout(ctx)
	defer cancel()
	_, err := s.token(ctx)
	return err
}

// send sends the request body makes of w, as Send describes.
func (s *Sender) send(ctx context.Context, w p2http.Wakeup, body func(p2http.Wakeup) []byte) error {
	if w.Token == "" {
		return p2http.Errorf(p2http.EINVALID, "no FCM registration token")
	}
	ctx, cancel := s.client.WithTimeout(ctx)
	defer cancel()
	auth, err := s.token(ctx)
	if err != nil {
		return err
	}
	payload := body(w)
	reauthorized := false
	for n := 0; ; n++ {
		status, header, answer, err := s.post(ctx, auth, payload)
		var delay time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctxError(ctx.Err(), "while sending to FCM")
			}
			if n >= maxRetries {
				// The error names the URL (the project id, no token) and
				// the network error.
				return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "could not reach FCM", Err: err}
			}
			delay = retryDelay(n)
		case status >= 200 && status < 300:
			s.otherProject.Accepted()
			return nil
		case !reauthorized && refusedToken(status, answer):
			reauthorized = true
			s.dropToken(auth)
			if auth, err = s.token(ctx); err != nil {
				return err
			}
			n-- // not a retry of the backoff's
			continue
		case status == http.StatusServiceUnavailable && n < maxRetries:
			delay = max(retryDelay(n), retryafter.Parse(header.Get("Retry-After"), time.Now()))
			if delay > maxRetryDelay {
				return classify(status, header, answer)
			}
		default:
			return s.judge(classify(status, header, answer), status, answer)
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctxError(ctx.Err(), "while waiting to retry FCM")
			}
		}
	}
}

// post sends one request. It returns the answer's status and header, and
// its body when the status is not a success.
//
// The request is a copy of s.request with auth's shared header (see
// package sharedheader); a redirect, which FCM never sends, is an
// unexpected answer unless Config.HTTPClient has a redirect policy.
func (s *Sender) post(ctx context.Context, auth *authHeader, body []byte) (int, http.Header, []byte, error) {
	req := s.request.WithContext(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	s.attempts.Add(1)
	// The error names the method, the URL (the project id, no token) and
	// the cause.
	res, err := s.client.Do(req, auth.header)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		// Read the short answer to the end, so that the stream (or the
		// HTTP/1.1 connection) is reused.
		_, err := io.Copy(io.Discard, io.LimitReader(res.Body, maxErrorBody))
		if err != nil && ctx.Err() == nil {
			// Accepted, and the answer was cut: the message was sent.
			err = nil
		}
		return res.StatusCode, res.Header, nil, err
	}
	answer, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	return res.StatusCode, res.Header, answer, nil
}

// tokenMargin is how long before its expiry the access token fetched last
// stops being trusted without asking the token source, which fetches a
// new one 10 s before.
const tokenMargin = 30 * time.Second

// token returns the Authorization header of a valid access token, fetching
// one if needed. The fetch runs in a goroutine of its own so that ctx can
// end the wait; while the token fetched last is far from its expiry,
// nothing is checked.
func (s *Sender) token(ctx context.Context) (*authHeader, error) {
	if a := s.auth.Load(); a != nil && time.Now().Before(a.fresh) {
		return a, nil
	}
	type fetched struct {
		tok *oauth2.Token
		err error
	}
	s.mu.Lock()
	tokens := s.tokens
	s.mu.Unlock()
	done := make(chan fetched, 1)
	go func() {
		tok, err := tokens.Token()
		done <- fetched{tok, err}
	}()
	var f fetched
	select {
	case f = <-done:
	case <-ctx.Done():
		return nil, ctxError(ctx.Err(), "while fetching an access token")
	}
	err := f.err
	if err == nil && (f.tok == nil || f.tok.AccessToken == "") {
		err = errors.New("the token endpoint answered without an access token")
	}
	if err == nil {
		a := newAuthHeader(f.tok.AccessToken)
		if !f.tok.Expiry.IsZero() {
			a.fresh = f.tok.Expiry.Add(-tokenMargin)
		}
		s.auth.Store(a)
		return a, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		cause := &tokenEndpointError{status: status, code: oauthErrorCode(re)}
		if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
			return nil, &p2http.Error{
				Code:       p2http.EUNAVAILABLE,
				Message:    "the OAuth2 token endpoint is unavailable",
				RetryAfter: retryafter.Parse(re.Response.Header.Get("Retry-After"), time.Now()),
				Err:        cause,
			}
		}
		return nil, &p2http.Error{
			Code:    p2http.EUPSTREAM,
			Message: "the OAuth2 token endpoint rejected our FCM credentials",
			Err:     cause,
		}
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx.Err(), "while fetching an access token")
	}
	// A network failure or an unreadable answer. The message of the OAuth2
	// library names the token URL and the network error; it holds no token.
	return nil, &p2http.Error{
		Code:    p2http.EUNAVAILABLE,
		Message: "could not fetch an OAuth2 access token for FCM",
		Err:     err,
	}
}

// dropToken forgets auth, the access token FCM refused, so that the next
// token call fetches a new one (the token source would otherwise hand out
// the same token until it expires). A token fetched meanwhile by another
// send is kept.
func (s *Sender) dropToken(auth *authHeader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.auth.Load(); a == nil || a.value != auth.value {
		return
	}
	s.auth.Store(nil)
	if tokens, err := s.renew(); err == nil {
		s.tokens = tokens
	}
}

// tokenEndpointError is the cause kept when the token endpoint refused us:
// the status and OAuth2 error code only, not the body.
type tokenEndpointError struct {
	status int
	code   string
}

// oauthErrors are the error codes of RFC 6749 (section 5.2) a token
// endpoint answers with: invalid_grant is Google's answer to a key that was
// deleted or has expired, or to a clock far off.
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

// oauthErrorCode is the RFC 6749 error code of a refusal, "" when it has
// none of them. The OAuth2 library's JWT flow (service accounts) leaves
// RetrieveError.ErrorCode empty, so the body is read for it; nothing else
// of the body is kept.
func oauthErrorCode(re *oauth2.RetrieveError) string {
	code := re.ErrorCode
	if code == "" {
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code = body.Error
		}
	}
	if !oauthErrors[code] {
		return ""
	}
	return code
}

var _ p2http.ReasonError = (*tokenEndpointError)(nil)

// ServiceReason implements p2http.ReasonError: the OAuth2 error code, such
// as "invalid_grant", or "" when the endpoint gave none.
func (e *tokenEndpointError) ServiceReason() string { return e.code }

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

var _ p2http.ReasonError = (*StatusError)(nil)

// ServiceReason implements p2http.ReasonError: FCM's error code (the
// FcmError detail, such as "QUOTA_EXCEEDED") when it is one of FCM's,
// else the google.rpc status (such as "RESOURCE_EXHAUSTED") when it is one
// of those, else "".
func (e *StatusError) ServiceReason() string {
	if fcmErrorCodes[e.ErrorCode] {
		return e.ErrorCode
	}
	if rpcStatuses[e.Status] {
		return e.Status
	}
	return ""
}

// fcmErrorCodes are the codes of FCM v1's FcmError detail, but for
// UNSPECIFIED_ERROR, which says nothing the status does not.
var fcmErrorCodes = map[string]bool{
	"INVALID_ARGUMENT": true, "UNREGISTERED": true, "SENDER_ID_MISMATCH": true, "QUOTA_EXCEEDED": true,
	"UNAVAILABLE": true, "INTERNAL": true, "THIRD_PARTY_AUTH_ERROR": true,
}

// rpcStatuses are the google.rpc status codes an error answer can carry.
var rpcStatuses = map[string]bool{
	"CANCELLED": true, "UNKNOWN": true, "INVALID_ARGUMENT": true, "DEADLINE_EXCEEDED": true, "NOT_FOUND": true,
	"ALREADY_EXISTS": true, "PERMISSION_DENIED": true, "UNAUTHENTICATED": true, "RESOURCE_EXHAUSTED": true,
	"FAILED_PRECONDITION": true, "ABORTED": true, "OUT_OF_RANGE": true, "UNIMPLEMENTED": true, "INTERNAL": true,
	"UNAVAILABLE": true, "DATA_LOSS": true,
}

// errorAnswer is the body of an FCM error answer: a google.rpc status with
// FcmError details.
type errorAnswer struct {
	Error struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// fcmErrorType is the type of the detail that holds FCM's error code.
const fcmErrorType = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

// statusOf is the google.rpc status of an answer that names none, by its
// HTTP status (as the Firebase SDK reads it).
func statusOf(httpStatus int) string {
	switch httpStatus {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "CONFLICT"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}

// parseError reads an error answer of FCM: its codes, and its message,
// which is only looked into, never kept (it may quote the request).
func parseError(httpStatus int, body []byte) (cause *StatusError, message string) {
	var a errorAnswer
	_ = json.Unmarshal(body, &a) // an unreadable body leaves the HTTP status to go by
	cause = &StatusError{HTTPStatus: httpStatus, Status: a.Error.Status}
	if cause.Status == "" {
		cause.Status = statusOf(httpStatus)
	}
	for _, d := range a.Error.Details {
		if d.Type == fcmErrorType {
			cause.ErrorCode = d.ErrorCode
			break
		}
	}
	return cause, a.Error.Message
}

// refusedToken reports whether FCM refused the access token itself (401
// UNAUTHENTICATED), not the project's APNs or Web Push credentials.
func refusedToken(status int, body []byte) bool {
	if status != http.StatusUnauthorized {
		return false
	}
	cause, _ := parseError(status, body)
	return cause.ErrorCode != "THIRD_PARTY_AUTH_ERROR"
}

// judge keeps the registrations when FCM answers SENDER_ID_MISMATCH to
// most pushes: the tokens then belong to another Firebase project than the
// credentials', a misconfiguration, not dead tokens (see deadburst).
func (s *Sender) judge(err error, httpStatus int, body []byte) error {
	var d *p2http.DeadTokenError
	if errors.As(err, &d) && d.Reason == "SENDER_ID_MISMATCH" && !s.otherProject.Dead() {
		cause, _ := parseError(httpStatus, body)
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM answers SENDER_ID_MISMATCH to most pushes: the tokens " +
			"likely belong to another Firebase project than the credentials' (check P2_FCM_CREDENTIALS); registrations are kept",
			Err: cause}
	}
	return err
}

// classify maps an error answer of FCM into the domain.
func classify(httpStatus int, header http.Header, body []byte) error {
	cause, message := parseError(httpStatus, body)
	retry := func() time.Duration { return retryafter.Parse(header.Get("Retry-After"), time.Now()) }
	code, status := cause.ErrorCode, cause.Status
	switch {
	case code == "UNREGISTERED":
		return &p2http.DeadTokenError{Reason: "UNREGISTERED"}
	case code == "SENDER_ID_MISMATCH":
		return &p2http.DeadTokenError{Reason: "SENDER_ID_MISMATCH"}
	case code == "INVALID_ARGUMENT" || status == "INVALID_ARGUMENT":
		if strings.Contains(strings.ToLower(message), "not a valid fcm registration token") {
			return &p2http.DeadTokenError{Reason: "INVALID_ARGUMENT: not a valid FCM registration token"}
		}
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected our message as invalid", Err: cause}
	case code == "QUOTA_EXCEEDED" || status == "RESOURCE_EXHAUSTED" || httpStatus == http.StatusTooManyRequests:
		return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "FCM quota exceeded; try again later", RetryAfter: retry(), Err: cause}
	case code == "THIRD_PARTY_AUTH_ERROR":
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM could not authenticate to APNs or Web Push with the project's credentials", Err: cause}
	case status == "UNAUTHENTICATED" || status == "PERMISSION_DENIED" ||
		httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden:
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected our credentials", Err: cause}
	case code == "UNAVAILABLE" || code == "INTERNAL" || status == "UNAVAILABLE" || status == "INTERNAL" || httpStatus >= 500:
		return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "FCM is unavailable; try again later", RetryAfter: retry(), Err: cause}
	default:
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: "FCM rejected the request", Err: cause}
	}
}

// ctxError maps an expired or cancelled context.
func ctxError(err error, during string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &p2http.Error{Code: p2http.ETIMEOUT, Message: "the deadline passed " + during, Err: err}
	}
	return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "the send was cancelled " + during, Err: err}
}
