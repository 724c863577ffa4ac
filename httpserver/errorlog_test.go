package httpserver

import (
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/testutil"
)

// A flood of errors makes one line when it starts and one per interval
// after, each giving the number it stands for; every error is counted.
func TestErrorLogThrottles(t *testing.T) {
	var out testutil.LogBuffer
	var mu sync.Mutex
	counted := map[string]int{}
	const every = 200 * time.Millisecond
	el := newErrorLog(slog.New(slog.NewTextHandler(&out, nil)), every, func(kind string) {
		mu.Lock()
		counted[kind]++
		mu.Unlock()
	})
	l := log.New(el, "", 0)
	for i := range 1000 {
		l.Printf("http: TLS handshake error from 192.0.2.1:%d: EOF", 1000+i)
	}
	l.Printf("http2: server: error reading preface from client 192.0.2.1:1: bogus greeting")
	l.Printf("http: Accept error: too many open files; retrying in 5ms")
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("%d lines at once, want the first of each kind (3):\n%s", n, out.String())
	}
	testutil.Eventually(t, 5*time.Second, "the interval's summary", func() bool {
		return strings.Contains(out.String(), "suppressed=999")
	})
	// Quiet now: the next interval ends without a line and closes.
	time.Sleep(3 * every)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[3], "kind=tls_handshake") || !strings.Contains(lines[3], "192.0.2.1:1999") {
		t.Fatalf("the summary names neither the kind nor the last error: %s", lines[3])
	}
	mu.Lock()
	if counted[ErrTLSHandshake] != 1000 || counted[ErrHTTP2] != 1 || counted[ErrOther] != 1 {
		t.Fatalf("counted %v", counted)
	}
	mu.Unlock()

	// After a quiet interval the next error is logged at once again, and
	// close reports what is still only counted.
	l.Printf("http: TLS handshake error from 192.0.2.2:1: EOF")
	l.Printf("http: TLS handshake error from 192.0.2.2:2: EOF")
	el.close()
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[4], "192.0.2.2:1") || !strings.Contains(lines[5], "suppressed=1") {
		t.Fatalf("after a quiet interval and close:\n%s", out.String())
	}
	l.Printf("http: TLS handshake error from 192.0.2.2:3: EOF")
	if strings.Contains(out.String(), "192.0.2.2:3") {
		t.Fatal("logged after close")
	}
}

// A long line is cut.
func TestErrorLogCutsLongLines(t *testing.T) {
	var out testutil.LogBuffer
	el := newErrorLog(slog.New(slog.NewTextHandler(&out, nil)), time.Hour, nil)
	defer el.close()
	fmt.Fprintf(el, "http: panic serving 192.0.2.1:1: %s\n", strings.Repeat("x", 10000))
	if n := len(out.String()); n > 2*maxErrorLine {
		t.Fatalf("a line of %d bytes", n)
	}
}
