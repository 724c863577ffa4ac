// Package testutil holds test scaffolding shared by the packages' tests: a
// log buffer that many goroutines may write to, the check that logs leak no
// secrets, a wait for a condition, an XML element tree for reading
// stanzas, a cookie jar, and running a built binary.
//
// It imports only the standard library, so any test may use it.
package testutil

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer is an io.Writer for logs that is safe for concurrent use: the
// code under test writes to it from its goroutines while the test reads it.
// The zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// AssertNoLeaks fails the test when logs, described by what (such as
// "p2xmpp's log"), holds any of the non-empty secrets. It also fails when
// logs is empty: when nothing was logged, the absence of the secrets proves
// nothing.
func AssertNoLeaks(t testing.TB, what, logs string, secrets ...string) {
	t.Helper()
	if logs == "" {
		t.Fatalf("%s is empty: nothing was logged, so the check for leaked secrets proves nothing", what)
	}
	var leaked []string
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			leaked = append(leaked, s)
		}
	}
	if len(leaked) > 0 {
		t.Fatalf("%s holds %q:\n%s", what, leaked, logs)
	}
}

// eventuallyPoll is how often Eventually checks its condition.
const eventuallyPoll = 5 * time.Millisecond

// Eventually checks ok every few milliseconds until it holds, and fails the
// test with what when it still does not after within: for what another
// goroutine or process does in its own time (a notification between
// instances, a background refresh, a worker's push).
func Eventually(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s (gave up after %v)", what, within)
		}
		time.Sleep(eventuallyPoll)
	}
}

// CookieJar returns a cookie jar holding cookie for rawURL.
func CookieJar(t testing.TB, rawURL string, cookie *http.Cookie) http.CookieJar {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	jar.SetCookies(u, []*http.Cookie{cookie})
	return jar
}

// RoundTripFunc is an http.RoundTripper made of a function, for clients
// whose answers a test writes itself.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
