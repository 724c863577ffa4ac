package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/internal/testutil"
)

const (
	topic  = "eu.siacs.conversations"
	keyID  = "ABC123DEFG"
	teamID = "DEF123GHIJ"
	device = "ec164939a8485ee6b7f7871071a11c7bb18aead5"
	// token is the device token the tests send to; no error may hold it.
	token = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seen is one request the fake APNs received.
type seen struct {
	protoMajor int
	path       string // escaped
	header     http.Header
	body       []byte
	remote     string
	peerCN     string
}

// fake stands in for APNs: HTTP/2 over TLS.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []seen
	respond http.HandlerFunc // nil = 200
}

// newFake starts a fake APNs; with clientCAs it requires a client
// certificate signed by one of them.
func newFake(t *testing.T, clientCAs *x509.CertPool) *fake {
	f := &fake{t: t}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	if clientCAs != nil {
		f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{
		protoMajor: r.ProtoMajor,
		path:       r.URL.EscapedPath(),
		header:     r.Header.Clone(),
		body:       body,
		remote:     r.RemoteAddr,
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s.peerCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	h := f.respond
	f.mu.Unlock()
	if r.ProtoMajor != 2 {
		f.t.Errorf("request over HTTP/%d.%d, want HTTP/2", r.ProtoMajor, r.ProtoMinor)
	}
	if r.Method != http.MethodPost {
		f.t.Errorf("method %s", r.Method)
	}
	w.Header().Set("apns-id", "EC1BF194-B3B2-424A-89A9-5A918A6E6B5B")
	if h != nil {
		h(w, r)
	}
}

func (f *fake) setRespond(h http.HandlerFunc) {
	f.mu.Lock()
	f.respond = h
	f.mu.Unlock()
}

// hang makes every request wait, unanswered, until the client gives up or
// the test ends.
func (f *fake) hang(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server closes: cleanups run last first
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// reject answers like APNs does on failure.
func reject(status int, reason string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if reason != "" {
			fmt.Fprintf(w, `{"reason":%q}`, reason)
		}
	}
}

// p8 returns a fresh P-256 key and its .p8 PEM.
func p8(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// tokenSender returns a Sender with token auth against f.
func tokenSender(t *testing.T, f *fake, c *clock) (*apns.Sender, *ecdsa.PrivateKey) {
	t.Helper()
	return tokenSenderWith(t, f, c, f.srv.Client())
}

// tokenSenderWith is tokenSender sending through client.
func tokenSenderWith(t *testing.T, f *fake, c *clock, client *http.Client) (*apns.Sender, *ecdsa.PrivateKey) {
	t.Helper()
	k, pemKey := p8(t)
	cfg := apns.Config{
		Endpoint:   f.srv.URL,
		Topic:      topic,
		SigningKey: pemKey,
		KeyID:      keyID,
		TeamID:     teamID,
		HTTPClient: client,
	}
	if c != nil {
		cfg.Now = c.Now
	}
	s, err := apns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// bearer returns the JWT of a request, checking the scheme.
func bearer(t *testing.T, r seen) string {
	t.Helper()
	a := r.header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "bearer ")
	if !ok {
		t.Fatalf("Authorization = %q, want bearer …", a)
	}
	return tok
}

// verifyJWT checks the signature and contents of a provider token and
// returns its iat.
func verifyJWT(t *testing.T, k *ecdsa.PrivateKey, raw string) time.Time {
	t.Helper()
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &k.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(teamID))
	if err != nil {
		t.Fatalf("provider token does not verify: %v", err)
	}
	if kid := tok.Header["kid"]; kid != keyID {
		t.Errorf("kid = %v, want %s", kid, keyID)
	}
	iat, err := tok.Claims.GetIssuedAt()
	if err != nil || iat == nil {
		t.Fatalf("no iat: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	if len(claims) != 2 {
		t.Errorf("claims %v, want iss and iat only", claims)
	}
	return iat.Time
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestRequests(t *testing.T) {
	f := newFake(t, nil)
	c := newClock()
	s, k := tokenSender(t, f, c)
	ctx := context.Background()
	if err := s.Send(ctx, p2http.Wakeup{Token: token, Device: device, Important: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, p2http.Wakeup{Token: token, Device: device}); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, want := range []struct {
		pushType, priority string
		body               map[string]any
	}{
		{"alert", "10", map[string]any{
			"aps": map[string]any{
				"alert":           map[string]any{"title": "New message"},
				"sound":           "default",
				"mutable-content": float64(1),
			},
			"account": device,
		}},
		{"background", "5", map[string]any{
			"aps":     map[string]any{"content-available": float64(1)},
			"account": device,
		}},
	} {
		r := reqs[i]
		if r.protoMajor != 2 {
			t.Errorf("HTTP/%d", r.protoMajor)
		}
		if r.path != "/3/device/"+token {
			t.Errorf("path = %q", r.path)
		}
		for h, v := range map[string]string{
			"apns-topic":     topic,
			"apns-push-type": want.pushType,
			"apns-priority":  want.priority,
			"Content-Type":   "application/json",
		} {
			if got := r.header.Get(h); got != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
		for _, h := range []string{"apns-collapse-id", "apns-expiration", "apns-id"} {
			if v, ok := r.header[http.CanonicalHeaderKey(h)]; ok {
				t.Errorf("%s set to %q", h, v)
			}
		}
		if got := decode(t, r.body); !reflect.DeepEqual(got, want.body) {
			t.Errorf("body %s, want %v", r.body, want.body)
		}
		if iat := verifyJWT(t, k, bearer(t, r)); !iat.Equal(c.Now()) {
			t.Errorf("iat = %v, want %v", iat, c.Now())
		}
	}
	if bearer(t, reqs[0]) != bearer(t, reqs[1]) {
		t.Error("the provider token was not reused")
	}
	if reqs[0].remote != reqs[1].remote {
		t.Errorf("second send on a new connection (%s, then %s)", reqs[0].remote, reqs[1].remote)
	}
}

func TestTokenPathEscaped(t *testing.T) {
	f := newFake(t, nil)
	s, _ := tokenSender(t, f, nil)
	if err := s.Send(context.Background(), p2http.Wakeup{Token: "ab/c d?e#f", Device: device}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.requests()[0].path, "/3/device/ab%2Fc%20d%3Fe%23f"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}

func TestProviderTokenLifetime(t *testing.T) {
	f := newFake(t, nil)
	c := newClock()
	t0 := c.Now()
	s, k := tokenSender(t, f, c)
	send := func() string {
		t.Helper()
		if err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device}); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		return bearer(t, reqs[len(reqs)-1])
	}
	first := send()
	c.Add(39 * time.Minute)
	if send() != first {
		t.Error("token replaced before 40 minutes")
	}
	c.Add(2 * time.Minute) // 41 minutes
	second := send()
	if second == first {
		t.Fatal("token not replaced after 41 minutes")
	}
	if iat := verifyJWT(t, k, second); !iat.Equal(t0.Add(41 * time.Minute)) {
		t.Errorf("new iat = %v, want %v", iat, t0.Add(41*time.Minute))
	}
	c.Add(time.Minute)
	if send() != second {
		t.Error("new token not reused")
	}
	// A clock that went back makes a token issued "in the future": replace it.
	c.Add(-2 * time.Hour)
	if send() == second {
		t.Error("token from the future reused")
	}
}

func TestProviderTokenConcurrent(t *testing.T) {
	f := newFake(t, nil)
	s, _ := tokenSender(t, f, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device, Important: i%2 == 0}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tokens := map[string]bool{}
	conns := map[string]bool{}
	for _, r := range f.requests() {
		tokens[bearer(t, r)] = true
		conns[r.remote] = true
	}
	if len(tokens) != 1 {
		t.Errorf("%d different provider tokens for concurrent sends, want 1", len(tokens))
	}
	t.Logf("50 concurrent sends over %d connection(s)", len(conns))
}

// expiredBefore answers ExpiredProviderToken to provider tokens issued
// before cutoff, which tests can move.
type expiredBefore struct {
	mu     sync.Mutex
	cutoff time.Time
}

func (e *expiredBefore) set(t time.Time) {
	e.mu.Lock()
	e.cutoff = t
	e.mu.Unlock()
}

func (e *expiredBefore) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
		var claims jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil {
			t.Errorf("provider token: %v", err)
		}
		iat, _ := claims.GetIssuedAt()
		e.mu.Lock()
		expired := iat == nil || iat.Before(e.cutoff)
		e.mu.Unlock()
		if expired {
			reject(http.StatusForbidden, "ExpiredProviderToken", nil)(w, r)
		}
	}
}

func TestExpiredProviderTokenRefreshes(t *testing.T) {
	f := newFake(t, nil)
	c := newClock()
	t0 := c.Now()
	var exp expiredBefore
	f.setRespond(exp.handler(t))
	s, k := tokenSender(t, f, c)
	w := p2http.Wakeup{Token: token, Device: device}
	if err := s.Send(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	// Apple now considers the first token expired (its clock is ahead).
	exp.set(t0.Add(time.Second))
	c.Add(25 * time.Minute)
	if err := s.Send(context.Background(), w); err != nil {
		t.Fatalf("send after ExpiredProviderToken: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (ok, expired, retried)", len(reqs))
	}
	if bearer(t, reqs[1]) != bearer(t, reqs[0]) {
		t.Error("the token was replaced before Apple said it expired")
	}
	if iat := verifyJWT(t, k, bearer(t, reqs[2])); !iat.Equal(t0.Add(25 * time.Minute)) {
		t.Errorf("retry used iat %v, want a new token", iat)
	}
	// The new token is kept.
	if err := s.Send(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	reqs = f.requests()
	if bearer(t, reqs[3]) != bearer(t, reqs[2]) {
		t.Error("the refreshed token was not reused")
	}
}

// Apple saying a young token expired means the clocks disagree: a new
// token would not help and would risk TooManyProviderTokenUpdates.
func TestExpiredProviderTokenYoung(t *testing.T) {
	f := newFake(t, nil)
	c := newClock()
	f.setRespond(reject(http.StatusForbidden, "ExpiredProviderToken", nil))
	s, _ := tokenSender(t, f, c)
	w := p2http.Wakeup{Token: token, Device: device}
	wantError(t, s.Send(context.Background(), w), p2http.EUPSTREAM, 0)
	c.Add(5 * time.Minute)
	wantError(t, s.Send(context.Background(), w), p2http.EUPSTREAM, 0)
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (no retries)", len(reqs))
	}
	if bearer(t, reqs[0]) != bearer(t, reqs[1]) {
		t.Error("a young token was replaced")
	}
	// Old enough: one refresh and one retry, then EUPSTREAM.
	c.Add(20 * time.Minute)
	wantError(t, s.Send(context.Background(), w), p2http.EUPSTREAM, 0)
	reqs = f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (one retry)", len(reqs))
	}
	if bearer(t, reqs[3]) == bearer(t, reqs[2]) {
		t.Error("retry with the same token")
	}
}

// wantError checks that err is a *p2http.Error with code and retry hint.
func wantError(t *testing.T, err error, code string, retry time.Duration) *p2http.Error {
	t.Helper()
	assertSafe(t, err)
	var e *p2http.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *p2http.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Errorf("code = %q, want %q (error %v)", e.Code, code, err)
	}
	if e.RetryAfter != retry {
		t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, retry)
	}
	if e.Message == "" {
		t.Error("empty message")
	}
	return e
}

// assertSafe fails when err's text holds the device token.
func assertSafe(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), p2http.ErrorMessage(err)} {
		if strings.Contains(s, token) || strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("error text %q holds a secret", s)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	ts := time.Date(2024, 3, 1, 12, 30, 45, 123e6, time.UTC)
	dead := func(reason string, since time.Time) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			var d *p2http.DeadTokenError
			if !errors.As(err, &d) {
				t.Fatalf("error %v (%T), want *p2http.DeadTokenError", err, err)
			}
			if d.Reason != reason {
				t.Errorf("reason = %q, want %q", d.Reason, reason)
			}
			if !d.Since.Equal(since) {
				t.Errorf("Since = %v, want %v", d.Since, since)
			}
		}
	}
	code := func(code string, retry time.Duration, reason string) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			e := wantError(t, err, code, retry)
			var se *apns.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("no *apns.StatusError cause in %v", err)
			}
			if se.Reason != reason {
				t.Errorf("cause reason = %q, want %q", se.Reason, reason)
			}
			if se.APNsID != "EC1BF194-B3B2-424A-89A9-5A918A6E6B5B" {
				t.Errorf("cause apns-id = %q", se.APNsID)
			}
			if reason != "" && !strings.Contains(e.Message, reason) {
				t.Errorf("message %q does not name the reason %q", e.Message, reason)
			}
		}
	}
	for _, c := range []struct {
		name   string
		answer http.HandlerFunc
		check  func(*testing.T, error)
	}{
		{"410 with timestamp", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGone)
			fmt.Fprintf(w, `{"reason":"Unregistered","timestamp":%d}`, ts.UnixMilli())
		}, dead("Unregistered", ts)},
		{"410 without body", reject(http.StatusGone, "", nil), dead("Unregistered", time.Time{})},
		{"410 ExpiredToken", reject(http.StatusGone, "ExpiredToken", nil), dead("ExpiredToken", time.Time{})},
		// A first answer of BadDeviceToken, with no accepted push before it,
		// looks like a sandbox/production mix-up: see TestBadDeviceTokenBurst.
		{"400 BadDeviceToken", reject(400, "BadDeviceToken", nil), code(p2http.EUPSTREAM, 0, "BadDeviceToken")},
		// So does a first DeviceTokenNotForTopic: a topic of another app.
		{"400 DeviceTokenNotForTopic", reject(400, "DeviceTokenNotForTopic", nil), code(p2http.EUPSTREAM, 0, "DeviceTokenNotForTopic")},
		{"403 InvalidProviderToken", reject(403, "InvalidProviderToken", nil), code(p2http.EUPSTREAM, 0, "InvalidProviderToken")},
		{"403 ExpiredProviderToken", reject(403, "ExpiredProviderToken", nil), code(p2http.EUPSTREAM, 0, "ExpiredProviderToken")},
		{"403 MissingProviderToken", reject(403, "MissingProviderToken", nil), code(p2http.EUPSTREAM, 0, "MissingProviderToken")},
		{"403 BadCertificate", reject(403, "BadCertificate", nil), code(p2http.EUPSTREAM, 0, "BadCertificate")},
		{"403 BadCertificateEnvironment", reject(403, "BadCertificateEnvironment", nil), code(p2http.EUPSTREAM, 0, "BadCertificateEnvironment")},
		{"400 TopicDisallowed", reject(400, "TopicDisallowed", nil), code(p2http.EUPSTREAM, 0, "TopicDisallowed")},
		{"400 BadTopic", reject(400, "BadTopic", nil), code(p2http.EUPSTREAM, 0, "BadTopic")},
		{"413 PayloadTooLarge", reject(413, "PayloadTooLarge", nil), code(p2http.EUPSTREAM, 0, "PayloadTooLarge")},
		{"400 BadPriority", reject(400, "BadPriority", nil), code(p2http.EUPSTREAM, 0, "BadPriority")},
		{"404 BadPath", reject(404, "BadPath", nil), code(p2http.EUPSTREAM, 0, "BadPath")},
		{"405 MethodNotAllowed", reject(405, "MethodNotAllowed", nil), code(p2http.EUPSTREAM, 0, "MethodNotAllowed")},
		{"429 TooManyRequests with Retry-After", reject(429, "TooManyRequests", map[string]string{"Retry-After": "30"}),
			code(p2http.EUNAVAILABLE, 30*time.Second, "TooManyRequests")},
		{"429 TooManyRequests", reject(429, "TooManyRequests", nil), code(p2http.EUNAVAILABLE, 0, "TooManyRequests")},
		{"500 InternalServerError", reject(500, "InternalServerError", nil), code(p2http.EUNAVAILABLE, 0, "InternalServerError")},
		{"503 ServiceUnavailable with Retry-After", reject(503, "ServiceUnavailable", map[string]string{"Retry-After": "120"}),
			code(p2http.EUNAVAILABLE, 120*time.Second, "ServiceUnavailable")},
		{"503 Shutdown", reject(503, "Shutdown", nil), code(p2http.EUNAVAILABLE, 0, "Shutdown")},
		{"502 without body", reject(502, "", nil), code(p2http.EUNAVAILABLE, 0, "")},
		// A reason that is not one of Apple's words is not repeated: it
		// could echo the request.
		{"400 echoing the token", reject(400, "bad token "+token, nil), code(p2http.EUPSTREAM, 0, "")},
		{"400 not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, "<html>"+token+"</html>")
		}, code(p2http.EUPSTREAM, 0, "")},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, nil)
			f.setRespond(c.answer)
			s, _ := tokenSender(t, f, nil)
			err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device, Important: true})
			assertSafe(t, err)
			c.check(t, err)
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// Error answers leave the connection usable.
func TestConnectionReusedAfterErrors(t *testing.T) {
	f := newFake(t, nil)
	s, _ := tokenSender(t, f, nil)
	answers := []http.HandlerFunc{
		reject(400, "BadDeviceToken", nil),
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusGone)
			io.WriteString(w, `{"reason":"Unregistered","timestamp":1700000000000}`+strings.Repeat(" ", 100<<10))
		},
		reject(503, "ServiceUnavailable", nil),
		nil,
	}
	for _, a := range answers {
		f.setRespond(a)
		s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device})
	}
	reqs := f.requests()
	for _, r := range reqs[1:] {
		if r.remote != reqs[0].remote {
			t.Errorf("new connection %s after %s", r.remote, reqs[0].remote)
		}
	}
}

func TestNetworkError(t *testing.T) {
	f := newFake(t, nil)
	s, _ := tokenSender(t, f, nil)
	f.srv.Close()
	err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device})
	wantError(t, err, p2http.EUNAVAILABLE, 0)
}

func TestDeadline(t *testing.T) {
	f := newFake(t, nil)
	f.hang(t)
	s, _ := tokenSender(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, p2http.Wakeup{Token: token, Device: device})
	wantError(t, err, p2http.ETIMEOUT, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v after a 200 ms deadline", d)
	}
}

func TestEmptyToken(t *testing.T) {
	f := newFake(t, nil)
	s, _ := tokenSender(t, f, nil)
	wantError(t, s.Send(context.Background(), p2http.Wakeup{Device: device}), p2http.EINVALID, 0)
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// pki is a CA and a client certificate it signed.
func pki(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test Apple WWDR CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "Apple Push Services: " + topic},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCertificateAuth(t *testing.T) {
	pool, cert := pki(t)
	f := newFake(t, pool)
	base := f.srv.Client()
	s, err := apns.New(apns.Config{
		Endpoint:    f.srv.URL,
		Topic:       topic,
		Certificate: &cert,
		HTTPClient:  base,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, important := range []bool{true, false} {
		if err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device, Important: important}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range f.requests() {
		if r.peerCN != "Apple Push Services: "+topic {
			t.Errorf("client certificate CN = %q", r.peerCN)
		}
		if a := r.header.Get("Authorization"); a != "" {
			t.Errorf("Authorization %q with certificate auth", a)
		}
		if r.header.Get("apns-topic") != topic {
			t.Errorf("apns-topic = %q", r.header.Get("apns-topic"))
		}
	}
	// The caller's client was not changed.
	if tc := base.Transport.(*http.Transport).TLSClientConfig; len(tc.Certificates) != 0 {
		t.Error("the certificate was added to the caller's transport")
	}
	// Without the certificate the fake refuses the handshake.
	if _, err := base.Post(f.srv.URL+"/3/device/x", "application/json", nil); err == nil {
		t.Error("the fake accepted a client without a certificate")
	}
}

func TestNewRejects(t *testing.T) {
	_, key := p8(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	key384 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	_, cert := pki(t)
	for _, c := range []struct {
		name string
		cfg  apns.Config
		want string
	}{
		{"no topic", apns.Config{SigningKey: key, KeyID: keyID, TeamID: teamID}, "topic"},
		{"no credentials", apns.Config{Topic: topic}, "no credentials"},
		{"both", apns.Config{Topic: topic, SigningKey: key, KeyID: keyID, TeamID: teamID, Certificate: &cert}, "both"},
		{"no key id", apns.Config{Topic: topic, SigningKey: key, TeamID: teamID}, "key id"},
		{"no team id", apns.Config{Topic: topic, SigningKey: key, KeyID: keyID}, "team id"},
		{"no key", apns.Config{Topic: topic, KeyID: keyID, TeamID: teamID}, "signing key"},
		{"key not PEM", apns.Config{Topic: topic, SigningKey: []byte("nope"), KeyID: keyID, TeamID: teamID}, "not PEM"},
		{"key not PKCS8", apns.Config{Topic: topic, SigningKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), KeyID: keyID, TeamID: teamID}, "PKCS #8"},
		{"key P-384", apns.Config{Topic: topic, SigningKey: key384, KeyID: keyID, TeamID: teamID}, "P-256"},
		{"empty certificate", apns.Config{Topic: topic, Certificate: &tls.Certificate{}}, "certificate"},
		{"bad endpoint", apns.Config{Topic: topic, SigningKey: key, KeyID: keyID, TeamID: teamID, Endpoint: "api.push.apple.com"}, "endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := apns.New(c.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// An isolated BadDeviceToken or DeviceTokenNotForTopic is a dead token; a
// burst of them (most recent answers) is a misconfiguration that must not
// delete registrations: a sandbox/production mix-up, or the topic of another
// app.
func TestDeadTokenBurst(t *testing.T) {
	for _, reason := range []string{"BadDeviceToken", "DeviceTokenNotForTopic"} {
		t.Run(reason, func(t *testing.T) {
			f := newFake(t, nil)
			s, _ := tokenSender(t, f, nil)
			send := func() error {
				return s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device})
			}
			for range 10 {
				if err := send(); err != nil {
					t.Fatal(err)
				}
			}
			f.setRespond(reject(400, reason, nil))
			var d *p2http.DeadTokenError
			if err := send(); !errors.As(err, &d) || d.Reason != reason {
				t.Fatalf("isolated %s after accepted pushes: %v, want a dead token", reason, err)
			}
			burst := 0
			for range 20 {
				err := send()
				if p2http.ErrorCode(err) == p2http.EUPSTREAM {
					burst++
				} else if !errors.As(err, &d) {
					t.Fatalf("unexpected %v", err)
				}
			}
			// Of 21 such answers after 10 accepted pushes, those that come
			// once they make up half of the window are held to be a
			// misconfiguration.
			if burst < 10 {
				t.Fatalf("only %d of 20 %s answers in a burst were held to be a misconfiguration", burst, reason)
			}
			f.setRespond(nil)
			for range 40 {
				if err := send(); err != nil {
					t.Fatal(err)
				}
			}
			f.setRespond(reject(400, reason, nil))
			if err := send(); !errors.As(err, &d) {
				t.Fatalf("after recovery an isolated %s is dead again; got %v", reason, err)
			}
		})
	}
}

// A client's Timeout bounds a send whose context has no deadline, as the
// deadline would.
func TestClientTimeoutWithoutDeadline(t *testing.T) {
	f := newFake(t, nil)
	f.hang(t)
	s, _ := tokenSenderWith(t, f, nil, &http.Client{Transport: f.srv.Client().Transport, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device})
	wantError(t, err, p2http.ETIMEOUT, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v with a 200 ms client timeout", d)
	}
}

// A cookie jar writes its cookies into a request's header, so a client
// with one must give every request a header of its own: with the header
// shared by every request of a provider token, the cookies of concurrent
// and later sends would pile up in it (and race).
func TestHTTPClientWithJar(t *testing.T) {
	f := newFake(t, nil)
	jar := testutil.CookieJar(t, f.srv.URL, &http.Cookie{Name: "jar", Value: "1"})
	s, _ := tokenSenderWith(t, f, nil, &http.Client{Transport: f.srv.Client().Transport, Jar: jar})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device, Important: i%2 == 0}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	reqs := f.requests()
	if len(reqs) != 10 {
		t.Fatalf("%d requests, want 10", len(reqs))
	}
	for i, r := range reqs {
		if c := r.header.Values("Cookie"); len(c) != 1 || c[0] != "jar=1" {
			t.Errorf("request %d: Cookie %q, want the jar's one cookie", i, c)
		}
		bearer(t, r)
	}
}

// APNs never redirects. Without a redirect policy in Config.HTTPClient a
// redirect is an unexpected answer, not followed; with one, the client
// follows it as the policy says.
func TestRedirect(t *testing.T) {
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("policy=%v", follow), func(t *testing.T) {
			f := newFake(t, nil)
			f.setRespond(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/moved" {
					http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
				}
			})
			client := &http.Client{Transport: f.srv.Client().Transport}
			if follow {
				client.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
			}
			s, _ := tokenSenderWith(t, f, nil, client)
			err := s.Send(context.Background(), p2http.Wakeup{Token: token, Device: device})
			want := 1
			if follow {
				want = 2
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil {
				t.Fatal("a redirect was taken for success")
			}
			reqs := f.requests()
			if len(reqs) != want {
				t.Fatalf("%d requests to APNs, want %d", len(reqs), want)
			}
			last := reqs[len(reqs)-1]
			bearer(t, last)
			if got := last.header.Get("apns-topic"); got != topic {
				t.Errorf("apns-topic %q after the redirect, want %q", got, topic)
			}
		})
	}
}
