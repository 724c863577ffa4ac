// Package benchfake holds the stand-in for Google's FCM that cmd/p2bench
// measures p2http against. Like internal/fake it is a real HTTP/2 server
// over TLS with its own OAuth2 token endpoint, but it keeps nothing of what
// it receives: it counts messages per push token in a fixed array, so that it
// serves millions of requests in flat memory and with little CPU, and it
// answers after a latency that can be changed while it runs.
package benchfake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxConcurrentStreams is the HTTP/2 stream limit the fake announces per
// connection (Go's default).
const MaxConcurrentStreams = 250

// tokenPrefix and tokenFiller make the push token of index i:
// tokenPrefix + i in nine digits + tokenFiller, 163 characters like a real
// FCM registration token. SQL seeding builds the same string (see
// TokenSQL).
const (
	tokenPrefix = "bench"
	tokenDigits = 9
	tokenFiller = ":APA91b" +
		"Hq3mZ0kYvX7cT2pLw9sR4eN8uJ1fB6gD5hK0aQzWxVyUtSrPoNmLkJiHgFeDcBa" +
		"9876543210ZyXwVuTsRqPoNmLkJiHgFeDcBaZyXwVuTsRqPoNmLkJiHgFeDcBa0123456789_-AbCde"
)

// Token returns the push token of index i (0 ≤ i < 10⁹).
func Token(i int) string {
	return fmt.Sprintf("%s%0*d%s", tokenPrefix, tokenDigits, i, tokenFiller)
}

// TokenSQL is a PostgreSQL expression giving Token(i) for an integer
// expression i.
func TokenSQL(i string) string {
	return fmt.Sprintf("'%s' || lpad((%s)::text, %d, '0') || '%s'", tokenPrefix, i, tokenDigits, tokenFiller)
}

// TokenIndex reads the index back from a token made by Token.
func TokenIndex(tok []byte) (int, bool) {
	if len(tok) < len(tokenPrefix)+tokenDigits || string(tok[:len(tokenPrefix)]) != tokenPrefix {
		return 0, false
	}
	n := 0
	for _, c := range tok[len(tokenPrefix) : len(tokenPrefix)+tokenDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// FCM is a fake FCM HTTP v1 API for benchmarks. It accepts
// POST /v1/projects/{ProjectID}/messages:send with the bearer AccessToken and
// answers 200 after the configured latency; anything else is counted as
// rejected and answered with an FCM-style error.
type FCM struct {
	// Server serves /token and the messages endpoint over HTTP/2 and TLS.
	Server *httptest.Server
	// ProjectID is the project of Credentials.
	ProjectID string
	// AccessToken is what the token endpoint hands out.
	AccessToken string
	// Credentials is a service-account key file whose token_uri points at
	// Server.
	Credentials []byte

	latency  atomic.Int64 // nanoseconds
	messages atomic.Int64
	rejected atomic.Int64
	tokens   atomic.Int64 // access tokens handed out
	conns    atomic.Int64 // connections accepted
	unknown  atomic.Int64 // accepted messages whose token is not Token(i)
	counts   []atomic.Int32
	bufs     sync.Pool
	okBody   []byte
	sendPath string
}

// NewFCM starts a fake FCM that counts messages for the tokens Token(0) to
// Token(tokenSpace-1); Close it when done.
func NewFCM(tokenSpace int) (*FCM, error) {
	f := &FCM{ProjectID: "p2bench", AccessToken: "bench-access-token", counts: make([]atomic.Int32, tokenSpace)}
	f.bufs.New = func() any { return new(bytes.Buffer) }
	f.okBody = []byte(`{"name":"projects/` + f.ProjectID + `/messages/0:1"}`)
	f.sendPath = "/v1/projects/" + f.ProjectID + "/messages:send"

	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: MaxConcurrentStreams}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.StartTLS()
	f.Server = srv

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		srv.Close()
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		srv.Close()
		return nil, err
	}
	f.Credentials, err = json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     f.ProjectID,
		"private_key_id": "bench-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "p2bench@p2bench.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      srv.URL + "/token",
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	return f, nil
}

// Close stops the server.
func (f *FCM) Close() { f.Server.Close() }

// Endpoint is the base URL to give p2http (P2_FCM_ENDPOINT), including /v1.
func (f *FCM) Endpoint() string { return f.Server.URL + "/v1" }

// SendURL is the URL a message is posted to.
func (f *FCM) SendURL() string { return f.Server.URL + f.sendPath }

// CACertPEM is the server's certificate in PEM, for SSL_CERT_FILE.
func (f *FCM) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Server.Certificate().Raw})
}

// Client returns an HTTP/2 client that trusts the server, configured like
// p2http's FCM client: one pooled connection is reused, more are opened when
// its streams are exhausted, two at a time (fcm.MaxConnsDialling).
func (f *FCM) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(f.Server.Certificate())
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 32,
		MaxConnsPerHost:     2,
		IdleConnTimeout:     5 * time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// SetLatency delays every successful answer by d.
func (f *FCM) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// Messages counts the messages accepted so far.
func (f *FCM) Messages() int64 { return f.messages.Load() }

// Rejected counts requests answered with an error (wrong path, credentials
// or body).
func (f *FCM) Rejected() int64 { return f.rejected.Load() }

// Conns counts the connections the server accepted.
func (f *FCM) Conns() int64 { return f.conns.Load() }

// TokenFetches counts access tokens handed out.
func (f *FCM) TokenFetches() int64 { return f.tokens.Load() }

// Unknown counts accepted messages whose token was not made by Token or
// lies outside the token space.
func (f *FCM) Unknown() int64 { return f.unknown.Load() }

// Count returns the messages accepted for Token(i).
func (f *FCM) Count(i int) int32 { return f.counts[i].Load() }

// ResetCounts zeroes the per-token counts (not the totals).
func (f *FCM) ResetCounts() {
	for i := range f.counts {
		f.counts[i].Store(0)
	}
}

var tokenKey = []byte(`"token":"`)

func (f *FCM) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, f.AccessToken)
		return
	}
	buf := f.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer f.bufs.Put(buf)
	_, err := buf.ReadFrom(io.LimitReader(r.Body, 64<<10))
	switch {
	case err != nil:
		f.fail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "unreadable body")
		return
	case r.Method != http.MethodPost || r.URL.Path != f.sendPath:
		f.fail(w, http.StatusNotFound, "NOT_FOUND", "no such method")
		return
	case r.Header.Get("Authorization") != "Bearer "+f.AccessToken:
		f.fail(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	body := buf.Bytes()
	i := bytes.Index(body, tokenKey)
	if i < 0 {
		f.fail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "no token")
		return
	}
	if n, ok := TokenIndex(body[i+len(tokenKey):]); ok && n < len(f.counts) {
		f.counts[n].Add(1)
	} else {
		f.unknown.Add(1)
	}
	f.messages.Add(1)
	if d := time.Duration(f.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.okBody)))
	w.Write(f.okBody)
}

func (f *FCM) fail(w http.ResponseWriter, status int, grpc, msg string) {
	f.rejected.Add(1)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q,"details":[]}}`, status, msg, grpc)
}
