package testutil

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// NotifySocket stands in for systemd's notification socket (sd_notify(3)):
// a unixgram socket whose datagrams it keeps for the test to read. Give
// its Path to the program as NOTIFY_SOCKET.
type NotifySocket struct {
	// Path is the socket's file.
	Path string

	mu   sync.Mutex
	msgs []string
}

// NewNotifySocket listens on a fresh socket, closed and removed at cleanup.
func NewNotifySocket(t testing.TB) *NotifySocket {
	t.Helper()
	// A short directory: a socket's path holds at most 107 bytes, and
	// t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	// A program that has dropped root (an unprivileged uid) must reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &NotifySocket{Path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path, 0o777); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		os.RemoveAll(dir)
	})
	return s
}

// Messages returns the messages received so far, in order.
func (s *NotifySocket) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Index returns the index in Messages of the first message from the
// index from on that holds line (such as READY=1) as one of its lines, or
// -1.
func (s *NotifySocket) Index(from int, line string) int {
	msgs := s.Messages()
	for i := max(from, 0); i < len(msgs); i++ {
		if slices.Contains(strings.Split(msgs[i], "\n"), line) {
			return i
		}
	}
	return -1
}

// Wait waits for a message from the index from on holding line, and
// returns its index; after within it fails the test, listing what came.
func (s *NotifySocket) Wait(t testing.TB, within time.Duration, from int, line string) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if i := s.Index(from, line); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on NOTIFY_SOCKET within %v; received %q", line, within, s.Messages())
		}
		time.Sleep(eventuallyPoll)
	}
}

// Values returns the values of the assignments KEY=… to key (such as
// STATUS) in the messages received so far, in order.
func (s *NotifySocket) Values(key string) []string {
	var out []string
	for _, m := range s.Messages() {
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, key+"="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}
