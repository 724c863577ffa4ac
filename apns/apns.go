// Package apns delivers wake-ups through Apple's Push Notification service
// (the HTTP/2 provider API), with token-based (ES256 JWT) or certificate
// authentication.
//
// Answers are mapped into the domain: nil, *p2http.DeadTokenError or
// *p2http.Error. Nothing this package returns or logs holds a device token
// or a key.
package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/deadburst"
	"github.com/p2http/p2http/internal/retryafter"
	"github.com/p2http/p2http/internal/sharedheader"
)

// Apple's endpoints.
const (
	ProductionEndpoint = "https://api.push.apple.com"
	SandboxEndpoint    = "https://api.sandbox.push.apple.com"
)

// How long a provider token (JWT) is used. Apple rejects tokens older than
// an hour and answers TooManyProviderTokenUpdates when they are replaced
// more often than every 20 minutes.
const (
	TokenLifetime = 40 * time.Minute
	minTokenAge   = 20 * time.Minute
)

// Config configures a Sender. Exactly one of token authentication
// (SigningKey, KeyID and TeamID) and certificate authentication
// (Certificate) must be given.
type Config struct {
	// Endpoint is the base URL of the APNs provider API. Empty means
	// ProductionEndpoint, or SandboxEndpoint when Sandbox is set.
	Endpoint string
	// Sandbox selects Apple's development environment when Endpoint is
	// empty.
	Sandbox bool
	// Topic is the app's bundle id, sent as apns-topic. Required.
	Topic string
	// SigningKey is the .p8 key from Apple: PEM, PKCS #8, ECDSA P-256.
	SigningKey []byte
	// KeyID is the id of SigningKey, sent as the JWT's kid.
	KeyID string
	// TeamID is the developer team id, sent as the JWT's iss.
	TeamID string
	// Certificate is a TLS client certificate for certificate-based
	// authentication, instead of a signing key.
	Certificate *tls.Certificate
	// HTTPClient sends the requests. Nil means an HTTP/2 client keeping its
	// connections open. With Certificate set, a client whose Transport is
	// an *http.Transport (or nil) is used with a copy of that transport
	// presenting the certificate; any other transport must present it
	// itself. Its Timeout bounds a send only when the send's context has
	// no deadline.
	HTTPClient *http.Client
	// Now returns the current time, for tests; nil means time.Now.
	Now func() time.Time
}

// Sender sends wake-ups through APNs. It is safe for concurrent use.
type Sender struct {
	client   *sharedheader.Client
	endpoint string
	topic    string
	now      func() time.Time

	// Token authentication; key is nil with certificate authentication.
	key    *ecdsa.PrivateKey
	keyID  string
	teamID string

	// badToken and otherTopic tell one dead token from a misconfiguration
	// (deadburst): BadDeviceToken, DeviceTokenNotForTopic.
	badToken, otherTopic deadburst.Detector

	mu     sync.Mutex
	jwt    string    // the current provider token, "" when none
	issued time.Time // its iat

	// headers are the request headers of the provider token used last.
	headers atomic.Pointer[headerSet]
}

// headerSet is the request headers of both kinds of wake-up for one
// provider token ("" with certificate authentication). Requests in flight
// share them, so they are never written once built.
type headerSet struct {
	bearer            string
	alert, background http.Header
}

// headersFor returns the headerSet of bearer, building it when the token
// changed.
func (s *Sender) headersFor(bearer string) *headerSet {
	if h := s.headers.Load(); h != nil && h.bearer == bearer {
		return h
	}
	header := func(pushType, priority string) http.Header {
		h := http.Header{
			"Content-Type":   {"application/json"},
			"Apns-Topic":     {s.topic},
			"Apns-Push-Type": {pushType},
			"Apns-Priority":  {priority},
		}
		if bearer != "" {
			h["Authorization"] = []string{"bearer " + bearer}
		}
		return h
	}
	h := &headerSet{bearer: bearer, alert: header("alert", "10"), background: header("background", "5")}
	s.headers.Store(h)
	return h
}

var _ p2http.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender. It does not contact Apple.
func New(cfg Config) (*Sender, error) {
	if cfg.Topic == "" {
		return nil, errors.New("apns: no topic (the app's bundle id)")
	}
	tokenAuth := len(cfg.SigningKey) > 0 || cfg.KeyID != "" || cfg.TeamID != ""
	switch {
	case tokenAuth && cfg.Certificate != nil:
		return nil, errors.New("apns: both a signing key and a certificate are configured; use one")
	case !tokenAuth && cfg.Certificate == nil:
		return nil, errors.New("apns: no credentials: configure a signing key with key id and team id, or a certificate")
	}
	s := &Sender{topic: cfg.Topic, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}

	if tokenAuth {
		var missing []string
		if len(cfg.SigningKey) == 0 {
			missing = append(missing, "signing key")
		}
		if cfg.KeyID == "" {
			missing = append(missing, "key id")
		}
		if cfg.TeamID == "" {
			missing = append(missing, "team id")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("apns: token authentication needs a %s", strings.Join(missing, ", a "))
		}
		key, err := parseKey(cfg.SigningKey)
		if err != nil {
			return nil, err
		}
		s.key, s.keyID, s.teamID = key, cfg.KeyID, cfg.TeamID
	} else if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return nil, errors.New("apns: the certificate has no certificate chain or no private key")
	}

	s.endpoint = strings.TrimRight(cfg.Endpoint, "/")
	if s.endpoint == "" {
		s.endpoint = ProductionEndpoint
		if cfg.Sandbox {
			s.endpoint = SandboxEndpoint
		}
	}
	if u, err := url.Parse(s.endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("apns: endpoint must be an absolute https URL")
	}

	client, err := httpClient(cfg.HTTPClient, cfg.Certificate)
	if err != nil {
		return nil, err
	}
	// Send bounds a call by its context, and by the client's Timeout when
	// that context has no deadline.
	s.client = sharedheader.New(client)
	return s, nil
}

// parseKey reads a .p8 signing key.
func parseKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(p8)
	if block == nil {
		return nil, errors.New("apns: the signing key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("apns: the signing key is not a PKCS #8 private key")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("apns: the signing key is not an ECDSA P-256 key")
	}
	return ec, nil
}

// MaxConnsDialling bounds the connections to APNs the default client dials
// at once (http.Transport's MaxConnsPerHost). When every HTTP/2 stream of
// the open connections is taken, net/http dials a connection for each
// request that finds no free stream, all at once; with this bound a burst
// waits for a few new connections and shares them, and the pool grows a
// few connections at a time to what the load needs.
const MaxConnsDialling = 2

// httpClient returns the client to send with: base, or a default HTTP/2
// client, presenting cert when set.
func httpClient(base *http.Client, cert *tls.Certificate) (*http.Client, error) {
	if base == nil {
		t := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 8,
			MaxConnsPerHost:     MaxConnsDialling,
			// Apple asks providers to keep connections open; idle ones are
			// checked with HTTP/2 pings instead of being closed.
			IdleConnTimeout: 0,
			HTTP2: &http.HTTP2Config{
				SendPingTimeout: time.Minute,
				PingTimeout:     15 * time.Second,
			},
		}
		if cert != nil {
			t.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: t, Timeout: 30 * time.Second}, nil
	}
	if cert == nil {
		return base, nil
	}
	var t *http.Transport
	switch rt := base.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		// A custom transport is trusted to present the certificate.
		return base, nil
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	t.ForceAttemptHTTP2 = true
	c := *base
	c.Transport = t
	return &c, nil
}

// The JSON bodies of the two kinds of wake-up.
type (
	payload struct {
		APS     any    `json:"aps"`
		Account string `json:"account"`
	}
	alertAPS struct {
		Alert          alert  `json:"alert"`
		Sound          string `json:"sound"`
		MutableContent int    `json:"mutable-content"`
	}
	alert struct {
		Title string `json:"title"`
	}
	backgroundAPS struct {
		ContentAvailable int `json:"content-available"`
	}
)

// request returns the body for w and whether it is an important wake-up:
// important wake-ups are alerts at priority 10 (apns-push-type alert) that
// the app's notification service extension may rewrite; others are
// background pushes at priority 5, as Apple requires for
// content-available-only pushes (see headersFor).
func request(w p2http.Wakeup) (important bool, body []byte) {
	p := payload{Account: w.Device}
	important = p2http.PriorityOf(w) == p2http.PriorityHigh
	if important {
		p.APS = alertAPS{Alert: alert{Title: "New message"}, Sound: "default", MutableContent: 1}
	} else {
		p.APS = backgroundAPS{ContentAvailable: 1}
	}
	body, err := json.Marshal(p)
	if err != nil {
		panic(err) // cannot happen: strings and ints only
	}
	return important, body
}

// Send sends one wake-up. It returns nil when APNs accepted it, a
// *p2http.DeadTokenError when APNs says the device token will never work
// again (410; BadDeviceToken and DeviceTokenNotForTopic when isolated: a
// burst of them is a misconfiguration, EUPSTREAM, and the registrations
// stay), and otherwise a *p2http.Error: EUPSTREAM when Apple refused our credentials, topic or
// payload, EUNAVAILABLE for 429, 5xx and network trouble (with RetryAfter
// when Apple gave one), ETIMEOUT when ctx expired.
//
// With token authentication, an ExpiredProviderToken answer to a provider
// token at least 20 minutes old replaces the token and retries once.
func (s *Sender) Send(ctx context.Context, w p2http.Wakeup) error {
	if w.Token == "" {
		return p2http.Errorf(p2http.EINVALID, "no APNs device token")
	}
	ctx, cancel := s.client.WithTimeout(ctx)
	defer cancel()
	important, body := request(w)
	u := s.endpoint + "/3/device/" + url.PathEscape(w.Token)
	for attempt := 0; ; attempt++ {
		var bearer string
		if s.key != nil {
			var err error
			if bearer, err = s.providerToken(); err != nil {
				return &p2http.Error{Code: p2http.EINTERNAL, Message: "could not sign an APNs provider token", Err: err}
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			// The URL holds the token: keep none of err's text.
			return p2http.Errorf(p2http.EINVALID, "the APNs device token does not fit in a URL")
		}
		headers := s.headersFor(bearer)
		header := headers.background
		if important {
			header = headers.alert
		}

		a, err := s.do(req, header)
		if err != nil {
			if ctx.Err() != nil {
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return &p2http.Error{Code: p2http.ETIMEOUT, Message: "the deadline passed while sending to APNs", Err: ctx.Err()}
				}
				return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "the send was cancelled", Err: ctx.Err()}
			}
			return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "could not reach APNs", Err: err}
		}
		if a.status == http.StatusOK {
			s.badToken.Accepted()
			s.otherTopic.Accepted()
			return nil
		}
		if a.status == http.StatusForbidden && a.reason == "ExpiredProviderToken" && bearer != "" && attempt == 0 && s.expire(bearer) {
			continue
		}
		return s.classify(a)
	}
}

// answer is what Send needs of an APNs response.
type answer struct {
	status     int
	reason     string
	timestamp  int64 // ms since the epoch; 0 when absent
	apnsID     string
	retryAfter string
}

// do sends req with header, shared by requests in flight (see package
// sharedheader), and reads the answer, draining and closing the body so
// that the connection is reused. A redirect, which APNs never sends, is an
// unexpected answer unless Config.HTTPClient has a redirect policy.
func (s *Sender) do(req *http.Request, header http.Header) (answer, error) {
	resp, err := s.client.Do(req, header)
	if err != nil {
		// *url.Error quotes the URL, which holds the device token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return answer{}, &sendError{op: req.Method, err: err}
	}
	defer resp.Body.Close()
	a := answer{
		status:     resp.StatusCode,
		apnsID:     resp.Header.Get("apns-id"),
		retryAfter: resp.Header.Get("Retry-After"),
	}
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		if json.Unmarshal(b, &body) == nil {
			a.reason, a.timestamp = body.Reason, body.Timestamp
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return a, nil
}

// sendError is a transport failure, without the URL.
type sendError struct {
	op  string
	err error
}

func (e *sendError) Error() string { return e.op + " to APNs: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// StatusError is the cause kept in a *p2http.Error when APNs answered with
// an error.
type StatusError struct {
	HTTPStatus int    // the HTTP status code
	Reason     string // Apple's reason, such as "BadTopic"; "" when absent or unexpected
	APNsID     string // the apns-id Apple gave the request
}

// Error implements error.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("APNs answered HTTP %d", e.HTTPStatus)
	if e.Reason != "" {
		s += ", reason " + e.Reason
	}
	if e.APNsID != "" {
		s += ", apns-id " + e.APNsID
	}
	return s
}

var _ p2http.ReasonError = (*StatusError)(nil)

// ServiceReason implements p2http.ReasonError: Apple's reason when it is
// one Apple documents, else "".
func (e *StatusError) ServiceReason() string {
	if reasons[e.Reason] {
		return e.Reason
	}
	return ""
}

// reasons are the reasons Apple documents for an error answer.
var reasons = map[string]bool{
	"BadCollapseId": true, "BadDeviceToken": true, "BadExpirationDate": true, "BadMessageId": true,
	"BadPriority": true, "BadTopic": true, "DeviceTokenNotForTopic": true, "DuplicateHeaders": true,
	"IdleTimeout": true, "InvalidPushType": true, "MissingDeviceToken": true, "MissingTopic": true,
	"PayloadEmpty": true, "TopicDisallowed": true, "BadCertificate": true, "BadCertificateEnvironment": true,
	"ExpiredProviderToken": true, "Forbidden": true, "InvalidProviderToken": true, "MissingProviderToken": true,
	"UnrelatedKeyIdInToken": true, "BadEnvironmentKeyIdInToken": true, "BadPath": true, "MethodNotAllowed": true,
	"ExpiredToken": true, "Unregistered": true, "PayloadTooLarge": true, "TooManyProviderTokenUpdates": true,
	"TooManyRequests": true, "InternalServerError": true, "ServiceUnavailable": true, "Shutdown": true,
}

// reasonPattern is what Apple's reasons look like; anything else is not
// repeated, in case a server echoes request data.
var reasonPattern = regexp.MustCompile(`^[A-Za-z]{1,64}$`)

// uuidPattern is what an apns-id looks like.
var uuidPattern = regexp.MustCompile(`^[0-9A-Fa-f-]{1,36}$`)

// classify maps an APNs error answer into the domain.
func (s *Sender) classify(a answer) error {
	reason := a.reason
	if !reasonPattern.MatchString(reason) {
		reason = ""
	}
	id := a.apnsID
	if !uuidPattern.MatchString(id) {
		id = ""
	}
	cause := &StatusError{HTTPStatus: a.status, Reason: reason, APNsID: id}
	upstream := func(msg string) error {
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return &p2http.Error{Code: p2http.EUPSTREAM, Message: msg, Err: cause}
	}
	unavailable := func(msg string) error {
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return &p2http.Error{
			Code:       p2http.EUNAVAILABLE,
			Message:    msg,
			RetryAfter: retryafter.Parse(a.retryAfter, time.Now()),
			Err:        cause,
		}
	}

	switch {
	case a.status == http.StatusGone:
		// The reason is kept with the registration's history when the
		// registration outlives the report: one Apple documents only.
		d := &p2http.DeadTokenError{Reason: cause.ServiceReason()}
		if d.Reason == "" {
			d.Reason = "Unregistered"
		}
		if a.timestamp > 0 {
			d.Since = time.UnixMilli(a.timestamp).UTC()
		}
		return d
	case a.status == http.StatusBadRequest && reason == "BadDeviceToken":
		if !s.badToken.Dead() {
			return upstream("APNs answers BadDeviceToken to most pushes: the app build and the endpoint likely " +
				"do not match (check P2_APNS_SANDBOX); registrations are kept")
		}
		return &p2http.DeadTokenError{Reason: reason}
	case a.status == http.StatusBadRequest && reason == "DeviceTokenNotForTopic":
		if !s.otherTopic.Dead() {
			return upstream("APNs answers DeviceTokenNotForTopic to most pushes: the topic is likely another app's " +
				"(check P2_APNS_TOPIC); registrations are kept")
		}
		return &p2http.DeadTokenError{Reason: reason}
	case a.status == http.StatusForbidden:
		return upstream("APNs rejected our credentials")
	case reason == "TopicDisallowed" || reason == "BadTopic" || reason == "MissingTopic":
		return upstream("APNs rejected our topic")
	case a.status == http.StatusRequestEntityTooLarge || reason == "PayloadTooLarge":
		return upstream("APNs rejected our payload as too large")
	case a.status == http.StatusTooManyRequests:
		return unavailable("APNs asks us to slow down")
	case a.status >= 500:
		return unavailable("APNs is unavailable")
	default:
		return upstream("APNs rejected the request")
	}
}

// providerToken returns the current provider token, signing a new one when
// there is none or it is TokenLifetime old.
func (s *Sender) providerToken() (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jwt != "" {
		age := now.Sub(s.issued)
		if age >= 0 && age < TokenLifetime {
			return s.jwt, nil
		}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.teamID,
		"iat": now.Unix(),
	})
	t.Header["kid"] = s.keyID
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", err
	}
	s.jwt, s.issued = signed, now
	return signed, nil
}

// expire handles an ExpiredProviderToken answer to used. It drops used
// when it is still current and old enough that Apple allows replacing it,
// and reports whether a retry would use another token.
func (s *Sender) expire(used string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jwt != used {
		return true // another Send replaced it already
	}
	if age := now.Sub(s.issued); age >= 0 && age < minTokenAge {
		// Replacing it now would earn TooManyProviderTokenUpdates; the
		// clocks disagree and a new token would not help.
		return false
	}
	s.jwt = ""
	return true
}
