package fcm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/testutil"
)

const (
	project     = "p2http-test"
	clientEmail = "push@p2http-test.iam.gserviceaccount.com"
	accessToken = "ya29.fake-access-token"
	// pushToken is what the tests send to; no error may contain it.
	pushToken = "fcm-token-SHOULD-NOT-LEAK-0123456789"
	device    = "ec164939a8485ee6b7f7871071a11c7bb18aead5" // p2's README example
)

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testKey returns one RSA key for the whole test binary (generating one per
// test is slow under -race).
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// credentials returns a service-account key file for the fake project
// whose token_uri is tokenURI.
func credentials(t *testing.T, tokenURI string, edit func(map[string]any)) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              "key-1",
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                clientEmail,
		"client_id":                   "1234567890",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sent is one request the fake FCM received.
type sent struct {
	path   string
	auth   string
	cookie string
	body   []byte
}

// fake stands in for both Google's OAuth2 token endpoint (/token) and the
// FCM HTTP v1 API (/v1/...).
type fake struct {
	t   *testing.T
	srv *httptest.Server

	tokenCalls atomic.Int32
	sendCalls  atomic.Int32

	mu    sync.Mutex
	sends []sent
	// token answers the token endpoint; nil = verify the assertion and
	// grant accessToken.
	token http.HandlerFunc
	// send answers FCM after the request was recorded; nil = success.
	send http.HandlerFunc
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("/v1/", f.serveFCM)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) tokenURI() string { return f.srv.URL + "/token" }

func (f *fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls.Add(1)
	f.mu.Lock()
	h := f.token
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.t.Errorf("grant_type = %q", g)
	}
	// The assertion must be signed with the service account's key and
	// name the account, the token URI and the FCM scope.
	tok, err := jwt.Parse(r.PostForm.Get("assertion"), func(*jwt.Token) (any, error) {
		return &testKey(f.t).PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(f.tokenURI()), jwt.WithIssuer(clientEmail))
	if err != nil {
		f.t.Errorf("assertion: %v", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
		return
	}
	if kid := tok.Header["kid"]; kid != "key-1" {
		f.t.Errorf("assertion kid = %v", kid)
	}
	if scope, _ := tok.Claims.(jwt.MapClaims)["scope"].(string); scope != fcm.Scope {
		f.t.Errorf("assertion scope = %q, want %q", scope, fcm.Scope)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, accessToken)
}

func (f *fake) serveFCM(w http.ResponseWriter, r *http.Request) {
	f.sendCalls.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.sends = append(f.sends, sent{path: r.URL.Path, auth: r.Header.Get("Authorization"), cookie: r.Header.Get("Cookie"), body: body})
	h := f.send
	f.mu.Unlock()
	if r.Method != http.MethodPost {
		f.t.Errorf("method = %s", r.Method)
	}
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name":"projects/%s/messages/0:1500415314455276%%31bd1c9631bd1c96"}`, project)
}

func (f *fake) setSend(h http.HandlerFunc) {
	f.mu.Lock()
	f.send = h
	f.mu.Unlock()
}

// hangSends makes every send wait, unanswered, until the client gives up
// or the test ends.
func (f *fake) hangSends(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server closes: cleanups run last first
	f.setSend(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func (f *fake) setToken(h http.HandlerFunc) {
	f.mu.Lock()
	f.token = h
	f.mu.Unlock()
}

func (f *fake) recorded() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sends...)
}

func (f *fake) sender(t *testing.T) *fcm.Sender {
	t.Helper()
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, f.tokenURI(), nil),
		Endpoint:        f.srv.URL + "/v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fcmError writes an error the way the FCM HTTP v1 API does.
func fcmError(status int, rpcStatus, message, errorCode string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		details := []any{}
		if errorCode != "" {
			details = append(details, map[string]any{
				"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
				"errorCode": errorCode,
			})
		}
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"code": status, "message": message, "status": rpcStatus, "details": details,
		}})
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		w.Write(body)
	}
}

func wakeup(important bool) p2http.Wakeup {
	return p2http.Wakeup{Token: pushToken, Device: device, Important: important}
}

// assertSafe fails when err's text holds the push token, the key or the
// access token.
func assertSafe(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), p2http.ErrorMessage(err)} {
		for _, secret := range []string{pushToken, accessToken, "PRIVATE KEY"} {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains a secret %q", s, secret)
			}
		}
	}
}

func TestMessageOnTheWire(t *testing.T) {
	f := newFake(t)
	s := f.sender(t)
	ctx := context.Background()
	for _, important := range []bool{true, false, true} {
		w := p2http.Wakeup{Token: "T", Device: device, Important: important}
		if err := s.Send(ctx, w); err != nil {
			t.Fatalf("Send(important=%v): %v", important, err)
		}
	}

	got := f.recorded()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, important := range []bool{true, false, true} {
		r := got[i]
		if want := "/v1/projects/" + project + "/messages:send"; r.path != want {
			t.Errorf("path = %q, want %q", r.path, want)
		}
		if want := "Bearer " + accessToken; r.auth != want {
			t.Errorf("Authorization = %q, want %q", r.auth, want)
		}
		priority := "normal"
		if important {
			priority = "high"
		}
		// p2's message exactly, plus android.priority.
		want := map[string]any{"message": map[string]any{
			"token": "T",
			"data":  map[string]any{"account": device},
			"android": map[string]any{
				"collapse_key": "ec1649",
				"priority":     priority,
			},
		}}
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		if !reflect.DeepEqual(body, want) {
			t.Errorf("body (important=%v)\n got %s\nwant %s", important, r.body, mustJSON(want))
		}
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times for 3 sends, want 1", n)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestMessage(t *testing.T) {
	for _, c := range []struct {
		device, collapse string
	}{
		{device, "ec1649"},
		{"abc", "abc"},
		{"", ""},
		{"abcdef", "abcdef"},
	} {
		m := fcm.NewMessage(p2http.Wakeup{Token: "T", Device: c.device})
		if m.Android.CollapseKey != c.collapse {
			t.Errorf("collapse key for %q: %+v, want %q", c.device, m.Android, c.collapse)
		}
		if m.Android.Priority != "normal" || m.Token != "T" {
			t.Errorf("message for %q: %+v", c.device, m)
		}
		if m.Data.Account != c.device {
			t.Errorf("data = %v", m.Data)
		}
	}
	if p := fcm.NewMessage(wakeup(true)).Android.Priority; p != "high" {
		t.Errorf("important priority = %q", p)
	}
}

// The request body is byte for byte what p2's Firebase SDK wrote for the
// message, the android priority added, whatever the strings hold
// (encoding/json's escaping, < > & included).
func TestRequestBody(t *testing.T) {
	for _, c := range []struct {
		w    p2http.Wakeup
		want string
	}{
		{wakeup(true), `{"message":{"token":"` + pushToken + `","data":{"account":"` + device + `"},"android":{"collapse_key":"ec1649","priority":"high"}}}`},
		{wakeup(false), `{"message":{"token":"` + pushToken + `","data":{"account":"` + device + `"},"android":{"collapse_key":"ec1649","priority":"normal"}}}`},
		{p2http.Wakeup{Token: "T", Device: ""}, `{"message":{"token":"T","data":{"account":""},"android":{"priority":"normal"}}}`},
		{p2http.Wakeup{Token: "T", Device: "abc"}, `{"message":{"token":"T","data":{"account":"abc"},"android":{"collapse_key":"abc","priority":"normal"}}}`},
		{p2http.Wakeup{Token: `quote" back\slash`, Device: "tab\tnew\nline\x00", Important: true},
			`{"message":{"token":"quote\" back\\slash","data":{"account":"tab\tnew\nline\u0000"},"android":{"collapse_key":"tab\tne","priority":"high"}}}`},
		{p2http.Wakeup{Token: "<script>&amp;", Device: "\u2028 é"},
			`{"message":{"token":"\u003cscript\u003e\u0026amp;","data":{"account":"\u2028 é"},"android":{"collapse_key":"\u2028 é","priority":"normal"}}}`},
	} {
		if got := fcm.RequestBody(c.w); string(got) != c.want {
			t.Errorf("RequestBody(%+v)\n got %s\nwant %s", c.w, got, c.want)
		}
	}
}

// BenchmarkRequestBody measures the body of one FCM request, as Send
// writes it.
func BenchmarkRequestBody(b *testing.B) {
	w := wakeup(true)
	b.ReportAllocs()
	for b.Loop() {
		fcm.RequestBody(w)
	}
}

// wantError checks that err is a *p2http.Error with code (and retry).
func wantError(t *testing.T, err error, code string, retry time.Duration) {
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
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	dead := func(reason string) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			var d *p2http.DeadTokenError
			if !errors.As(err, &d) {
				t.Fatalf("error %v (%T), want *p2http.DeadTokenError", err, err)
			}
			if d.Reason != reason {
				t.Errorf("reason = %q, want %q", d.Reason, reason)
			}
			if !d.Since.IsZero() {
				t.Errorf("Since = %v, want zero", d.Since)
			}
		}
	}
	code := func(code string, retry time.Duration) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			wantError(t, err, code, retry)
		}
	}
	for _, c := range []struct {
		name     string
		answer   http.HandlerFunc
		check    func(*testing.T, error)
		attempts int32
	}{
		{
			name:     "unregistered",
			answer:   fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", nil),
			check:    dead("UNREGISTERED"),
			attempts: 1,
		},
		{
			name:   "sender id mismatch",
			answer: fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", nil),
			// With no push accepted before it: credentials of another
			// project, not a dead token (TestSenderIDMismatchBurst).
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name:     "not a valid registration token",
			answer:   fcmError(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT", nil),
			check:    dead("INVALID_ARGUMENT: not a valid FCM registration token"),
			attempts: 1,
		},
		{
			name: "invalid payload with field violations",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				w.WriteHeader(400)
				// Google's field-violation messages quote the offending
				// value: here it quotes the token, which must not leak.
				msg := fmt.Sprintf("Invalid value at 'message.token' (TYPE_STRING), %q", pushToken)
				json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
					"code": 400, "message": msg, "status": "INVALID_ARGUMENT",
					"details": []any{map[string]any{
						"@type":           "type.googleapis.com/google.rpc.BadRequest",
						"fieldViolations": []any{map[string]any{"field": "message.token", "description": msg}},
					}},
				}})
			},
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name:     "invalid argument from FCM",
			answer:   fcmError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT", nil),
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name: "quota exceeded with Retry-After",
			answer: fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'.",
				"QUOTA_EXCEEDED", map[string]string{"Retry-After": "37"}),
			check:    code(p2http.EUNAVAILABLE, 37*time.Second),
			attempts: 1, // 429 is not retried (as the SDK did not)
		},
		{
			name:     "quota exceeded without Retry-After",
			answer:   fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", nil),
			check:    code(p2http.EUNAVAILABLE, 0),
			attempts: 1,
		},
		{
			name: "bare 429",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "5")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			},
			check:    code(p2http.EUNAVAILABLE, 5*time.Second),
			attempts: 1,
		},
		{
			name:     "internal",
			answer:   fcmError(500, "INTERNAL", "Internal error encountered.", "INTERNAL", nil),
			check:    code(p2http.EUNAVAILABLE, 0),
			attempts: 1, // 500 is not retried (as the SDK did not)
		},
		{
			name: "unavailable with a long Retry-After",
			// Longer than the 2-minute cap: no retry at all.
			answer:   fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", map[string]string{"Retry-After": "300"}),
			check:    code(p2http.EUNAVAILABLE, 300*time.Second),
			attempts: 1,
		},
		{
			name: "bad gateway",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			},
			check:    code(p2http.EUNAVAILABLE, 0),
			attempts: 1,
		},
		{
			name:   "unauthenticated",
			answer: fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "", nil),
			check:  code(p2http.EUPSTREAM, 0),
			// Sent again once with a new access token, refused again.
			attempts: 2,
		},
		{
			name:     "permission denied",
			answer:   fcmError(403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/p2http-test' (or it may not exist).", "", nil),
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name:     "third party auth error",
			answer:   fcmError(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR", nil),
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name:     "bare 403",
			answer:   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "forbidden", http.StatusForbidden) },
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
		{
			name:     "not found without FcmError",
			answer:   fcmError(404, "NOT_FOUND", "Requested entity was not found.", "", nil),
			check:    code(p2http.EUPSTREAM, 0),
			attempts: 1,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.setSend(c.answer)
			err := f.sender(t).Send(context.Background(), wakeup(true))
			assertSafe(t, err)
			c.check(t, err)
			if n := f.sendCalls.Load(); n != c.attempts {
				t.Errorf("%d attempts, want %d", n, c.attempts)
			}
		})
	}
}

// An isolated SENDER_ID_MISMATCH is a token of another project, dead for
// this one; a burst of them (most recent answers) means the credentials are
// of another project than the app's, and no registration may be removed.
func TestSenderIDMismatchBurst(t *testing.T) {
	f := newFake(t)
	s := f.sender(t)
	send := func() error { return s.Send(context.Background(), wakeup(true)) }
	for range 10 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	f.setSend(fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", nil))
	var d *p2http.DeadTokenError
	if err := send(); !errors.As(err, &d) || d.Reason != "SENDER_ID_MISMATCH" {
		t.Fatalf("isolated SENDER_ID_MISMATCH after accepted pushes: %v, want a dead token", err)
	}
	burst := 0
	for range 20 {
		err := send()
		var se *fcm.StatusError
		switch {
		case p2http.ErrorCode(err) == p2http.EUPSTREAM && errors.As(err, &se) && se.ServiceReason() == "SENDER_ID_MISMATCH":
			burst++
		case !errors.As(err, &d):
			t.Fatalf("unexpected %v", err)
		}
	}
	if burst < 10 {
		t.Fatalf("only %d of 20 SENDER_ID_MISMATCH answers in a burst were held to be a misconfiguration", burst)
	}
	f.setSend(nil)
	for range 40 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	f.setSend(fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", nil))
	if err := send(); !errors.As(err, &d) {
		t.Fatalf("after recovery an isolated SENDER_ID_MISMATCH is dead again; got %v", err)
	}
}

func TestStatusErrorCause(t *testing.T) {
	f := newFake(t)
	f.setSend(fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", nil))
	err := f.sender(t).Send(context.Background(), wakeup(false))
	var se *fcm.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v has no *fcm.StatusError cause", err)
	}
	want := fcm.StatusError{HTTPStatus: 429, Status: "RESOURCE_EXHAUSTED", ErrorCode: "QUOTA_EXCEEDED"}
	if *se != want {
		t.Errorf("cause = %+v, want %+v", *se, want)
	}
}

func TestRetryAfterDate(t *testing.T) {
	f := newFake(t)
	at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	f.setSend(fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", map[string]string{"Retry-After": at}))
	err := f.sender(t).Send(context.Background(), wakeup(false))
	if d := p2http.RetryAfter(err); d < 80*time.Second || d > 91*time.Second {
		t.Errorf("RetryAfter = %v, want about 90s", d)
	}
}

// A 503 is retried at once the first time.
func TestUnavailableOnceThenSuccess(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	fail := fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", nil)
	f.setSend(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			fail(w, r)
			return
		}
		fmt.Fprintf(w, `{"name":"projects/%s/messages/1"}`, project)
	})
	s := f.sender(t)
	if err := s.Send(context.Background(), wakeup(true)); err != nil {
		t.Fatal(err)
	}
	if got := f.sendCalls.Load(); got != 2 {
		t.Errorf("%d attempts, want 2", got)
	}
	if got := s.Attempts(); got != 2 {
		t.Errorf("Sender counted %d attempts, want 2 (the retry included)", got)
	}
}

// A 503 without Retry-After is retried four times with backoff
// (0 s, 1 s, 2 s, 4 s) before Send gives up.
func TestUnavailableRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7 s of backoff")
	}
	t.Parallel()
	f := newFake(t)
	f.setSend(fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", nil))
	start := time.Now()
	err := f.sender(t).Send(context.Background(), wakeup(true))
	wantError(t, err, p2http.EUNAVAILABLE, 0)
	if n := f.sendCalls.Load(); n != 5 {
		t.Errorf("%d attempts, want 5", n)
	}
	t.Logf("503 x5 took %v", time.Since(start))
}

// A ctx deadline cuts the retries short.
func TestUnavailableRetriesCutByDeadline(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.setSend(fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := f.sender(t).Send(ctx, wakeup(true))
	wantError(t, err, p2http.ETIMEOUT, 0)
	if n := f.sendCalls.Load(); n < 2 || n > 3 {
		t.Errorf("%d attempts in 1.5 s, want 2 or 3", n)
	}
}

// Network errors are retried too, then reported as EUNAVAILABLE.
func TestNetworkError(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7 s of backoff")
	}
	t.Parallel()
	f := newFake(t)
	// An FCM that accepts connections and drops them at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, f.tokenURI(), nil),
		Endpoint:        "http://" + ln.Addr().String() + "/v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), wakeup(true))
	wantError(t, err, p2http.EUNAVAILABLE, 0)
	if n := accepted.Load(); n < 5 {
		t.Errorf("%d connections, want at least 5 (1 + 4 retries)", n)
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.hangSends(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := f.sender(t).Send(ctx, wakeup(true))
	wantError(t, err, p2http.ETIMEOUT, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v after a 200 ms deadline", d)
	}
}

func TestTokenEndpointRejectsCredentials(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	})
	s := f.sender(t)
	for range 2 {
		err := s.Send(context.Background(), wakeup(true))
		wantError(t, err, p2http.EUPSTREAM, 0)
		// Google's OAuth2 error code is the push's reason, its description
		// is not kept.
		if got := p2http.FailureReason(err); got != "invalid_grant" {
			t.Errorf("failure reason %q, want invalid_grant", got)
		}
		if strings.Contains(err.Error(), "Invalid JWT Signature") {
			t.Errorf("the endpoint's description is in the error: %v", err)
		}
	}
	if n := f.sendCalls.Load(); n != 0 {
		t.Errorf("FCM called %d times without an access token", n)
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Errorf("token endpoint called %d times, want 2 (errors are not cached)", n)
	}
}

func TestTokenEndpointUnavailable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		http.Error(w, "backend error", http.StatusServiceUnavailable)
	})
	err := f.sender(t).Send(context.Background(), wakeup(true))
	wantError(t, err, p2http.EUNAVAILABLE, 12*time.Second)
	if n := f.sendCalls.Load(); n != 0 {
		t.Errorf("FCM called %d times without an access token", n)
	}
}

func TestTokenEndpointUnreachable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/token"
	ln.Close()
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, dead, nil),
		Endpoint:        f.srv.URL + "/v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), wakeup(true))
	wantError(t, err, p2http.EUNAVAILABLE, 0)
}

// The HTTP client given in Config carries both the token fetch and the FCM
// calls.
func TestHTTPClientUsedForBoth(t *testing.T) {
	f := newFake(t)
	var hosts sync.Map
	var n atomic.Int32
	client := &http.Client{Transport: testutil.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		hosts.Store(r.URL.Path, true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, f.tokenURI(), nil),
		Endpoint:        f.srv.URL + "/v1/", // a trailing slash is tolerated
		HTTPClient:      client,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), wakeup(false)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/token", "/v1/projects/" + project + "/messages:send"} {
		if _, ok := hosts.Load(p); !ok {
			t.Errorf("request to %s did not go through Config.HTTPClient", p)
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("%d requests through Config.HTTPClient, want 2", got)
	}
}

// A cookie jar writes its cookies into a request's header, so a client
// with one must give every request a header of its own: with the header
// shared by every request of an access token, the cookies of concurrent and
// later sends would pile up in it (and race).
func TestHTTPClientWithJar(t *testing.T) {
	f := newFake(t)
	jar := testutil.CookieJar(t, f.srv.URL, &http.Cookie{Name: "jar", Value: "1"})
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, f.tokenURI(), nil),
		Endpoint:        f.srv.URL + "/v1",
		HTTPClient:      &http.Client{Jar: jar},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := s.Send(context.Background(), wakeup(false)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Send(context.Background(), wakeup(false)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 11 {
		t.Fatalf("%d sends, want 11", len(f.sends))
	}
	for i, got := range f.sends {
		if got.cookie != "jar=1" || got.auth != "Bearer "+accessToken {
			t.Errorf("send %d: Cookie %q, Authorization %q; want the jar's one cookie and the access token", i, got.cookie, got.auth)
		}
	}
}

// FCM never redirects. Without a redirect policy in Config.HTTPClient a
// redirect is an unexpected answer, not followed; with one, the client
// follows it as the policy says.
func TestRedirect(t *testing.T) {
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("policy=%v", follow), func(t *testing.T) {
			f := newFake(t)
			f.setSend(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/moved" {
					fmt.Fprint(w, `{"name":"projects/p/messages/1"}`)
					return
				}
				http.Redirect(w, r, "/v1/moved", http.StatusTemporaryRedirect)
			})
			client := &http.Client{}
			if follow {
				client.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
			}
			s, err := fcm.New(context.Background(), fcm.Config{
				CredentialsJSON: credentials(t, f.tokenURI(), nil),
				Endpoint:        f.srv.URL + "/v1",
				HTTPClient:      client,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), wakeup(false))
			if follow {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				wantError(t, err, p2http.EUPSTREAM, 0)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			want := 1
			if follow {
				want = 2
			}
			if len(f.sends) != want {
				t.Fatalf("%d requests to FCM, want %d", len(f.sends), want)
			}
			if last := f.sends[len(f.sends)-1]; last.auth != "Bearer "+accessToken || len(last.body) == 0 {
				t.Errorf("request to %s: Authorization %q, %d bytes of body", last.path, last.auth, len(last.body))
			}
		})
	}
}

func TestConcurrentSends(t *testing.T) {
	f := newFake(t)
	s := f.sender(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.Send(context.Background(), wakeup(i%2 == 0)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.sendCalls.Load(); n != 20 {
		t.Errorf("%d sends, want 20", n)
	}
	if n := f.tokenCalls.Load(); n < 1 || n > 20 {
		t.Errorf("token endpoint called %d times", n)
	}
}

func TestEmptyToken(t *testing.T) {
	f := newFake(t)
	err := f.sender(t).Send(context.Background(), p2http.Wakeup{Device: device})
	wantError(t, err, p2http.EINVALID, 0)
	if n := f.sendCalls.Load() + f.tokenCalls.Load(); n != 0 {
		t.Errorf("%d requests for an empty token", n)
	}
}

func TestNewRejects(t *testing.T) {
	f := newFake(t)
	for _, c := range []struct {
		name string
		cfg  fcm.Config
		want string
	}{
		{"no credentials", fcm.Config{}, "no service-account credentials"},
		{"not JSON", fcm.Config{CredentialsJSON: []byte("{")}, "not valid JSON"},
		{"no project", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), func(m map[string]any) { delete(m, "project_id") })}, "project_id"},
		{"wrong type", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), func(m map[string]any) { m["type"] = "authorized_user" })}, "authorized_user"},
		{"no email", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), func(m map[string]any) { delete(m, "client_email") })}, "client_email"},
		{"no key", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), func(m map[string]any) { delete(m, "private_key") })}, "private_key"},
		{"bad key", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), func(m map[string]any) {
			m["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		})}, "does not parse"},
		{"bad endpoint", fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), nil), Endpoint: "fcm.example:443"}, "endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fcm.New(context.Background(), c.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

// New keeps no deadline of its context for later token fetches.
func TestNewContextEnds(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := fcm.New(ctx, fcm.Config{CredentialsJSON: credentials(t, f.tokenURI(), nil), Endpoint: f.srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.Send(context.Background(), wakeup(true)); err != nil {
		t.Fatal(err)
	}
	if s.ProjectID() != project {
		t.Errorf("ProjectID = %q", s.ProjectID())
	}
}

// A send whose context has no deadline is bounded by the client's Timeout.
func TestTimeoutWithoutDeadline(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.hangSends(t)
	s, err := fcm.New(context.Background(), fcm.Config{
		CredentialsJSON: credentials(t, f.tokenURI(), nil),
		Endpoint:        f.srv.URL + "/v1",
		HTTPClient:      &http.Client{Timeout: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(context.Background(), wakeup(true))
	wantError(t, err, p2http.ETIMEOUT, 0)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v with a 300 ms client timeout", d)
	}
}

// The access token is fetched once while it is valid, and again for every
// send while it is about to expire (the OAuth2 library renews a token 10 s
// before its expiry).
func TestAccessTokenReused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		expiresIn int
		fetches   int32 // at least
	}{{3599, 1}, {5, 3}} {
		f := newFake(t)
		f.setToken(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, accessToken, c.expiresIn)
		})
		s := f.sender(t)
		for range 3 {
			if err := s.Send(context.Background(), wakeup(true)); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.tokenCalls.Load(); n < c.fetches || c.expiresIn > 60 && n != c.fetches {
			t.Errorf("expires_in %d: %d token fetches for 3 sends, want %d", c.expiresIn, n, c.fetches)
		}
	}
}

// An access token FCM refuses (revoked, or expired early) is dropped: the
// message goes out again at once with a new token, which later sends keep
// using.
func TestRefusedAccessTokenRenewed(t *testing.T) {
	f := newFake(t)
	var issued atomic.Int32
	f.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":3599,"token_type":"Bearer"}`, issued.Add(1))
	})
	revoked := fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "", nil)
	f.setSend(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			revoked(w, r)
			return
		}
		fmt.Fprintf(w, `{"name":"projects/%s/messages/1"}`, project)
	})
	s := f.sender(t)
	for range 3 {
		if err := s.Send(context.Background(), wakeup(true)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenCalls.Load(); n != 2 {
		t.Errorf("%d token fetches, want 2 (the first token refused, the second kept)", n)
	}
	var auths []string
	for _, r := range f.recorded() {
		auths = append(auths, r.auth)
	}
	if want := []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-2", "Bearer tok-2"}; !reflect.DeepEqual(auths, want) {
		t.Errorf("Authorization headers %q, want %q", auths, want)
	}
	if n := s.Attempts(); n != 4 {
		t.Errorf("Attempts = %d, want 4", n)
	}
}

// FCM's refusal of the project's APNs or Web Push credentials is not about
// the access token: it is kept, and nothing is sent again.
func TestThirdPartyAuthErrorKeepsToken(t *testing.T) {
	f := newFake(t)
	f.setSend(fcmError(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR", nil))
	s := f.sender(t)
	for range 2 {
		wantError(t, s.Send(context.Background(), wakeup(true)), p2http.EUPSTREAM, 0)
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token fetches, want 1", n)
	}
	if n := f.sendCalls.Load(); n != 2 {
		t.Errorf("%d sends, want 2", n)
	}
}
