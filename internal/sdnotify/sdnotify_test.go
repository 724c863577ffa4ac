package sdnotify

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/testutil"
)

func newNotifier(t *testing.T) (*Notifier, *testutil.NotifySocket, *bytes.Buffer) {
	t.Helper()
	sock := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	var logs bytes.Buffer
	return New(slog.New(slog.NewTextHandler(&logs, nil))), sock, &logs
}

// TestReadyCarriesStatus: READY=1 goes with the last status, so that a
// status set before (connecting…) or after (connected) stays right.
func TestReadyCarriesStatus(t *testing.T) {
	n, sock, _ := newNotifier(t)
	n.Status("connecting to xmpp.example.org:5347")
	n.Ready("")
	n.Status("connected")
	n.Ready("serving")
	sock.Wait(t, 5*time.Second, 0, "STATUS=serving")
	want := []string{
		"STATUS=connecting to xmpp.example.org:5347",
		"READY=1\nSTATUS=connecting to xmpp.example.org:5347",
		"STATUS=connected",
		"READY=1\nSTATUS=serving",
	}
	if got := sock.Messages(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// TestStatusOneLine: a status with a newline must not inject a second
// assignment.
func TestStatusOneLine(t *testing.T) {
	n, sock, _ := newNotifier(t)
	n.Status("down\nREADY=1")
	sock.Wait(t, 5*time.Second, 0, "STATUS=down READY=1")
	if i := sock.Index(0, "READY=1"); i >= 0 {
		t.Errorf("a status line sent READY=1: %q", sock.Messages())
	}
}

// TestStopping: STOPPING=1, and no status afterwards (a link dropping
// during the shutdown is not news).
func TestStopping(t *testing.T) {
	n, sock, _ := newNotifier(t)
	n.Ready("")
	n.Stopping()
	n.Status("reconnecting")
	n.Status("last")
	// Status after Stopping sends nothing: wait for a marker sent after.
	n.Ready("")
	sock.Wait(t, 5*time.Second, 0, "STOPPING=1")
	last := sock.Wait(t, 5*time.Second, 2, "READY=1")
	if got := sock.Values("STATUS"); strings.Join(got, "|") != "stopping|stopping" {
		t.Errorf("statuses %q (messages %q), want only stopping after STOPPING=1", got, sock.Messages()[:last+1])
	}
}

// TestExtending: at once and then every period until done, each asking for
// three periods; nothing after done.
func TestExtending(t *testing.T) {
	defer func(d time.Duration) { extendEvery = d }(extendEvery)
	extendEvery = 20 * time.Millisecond
	n, sock, _ := newNotifier(t)
	done := n.Extending("applying database migrations")
	sock.Wait(t, 5*time.Second, 0, "STATUS=applying database migrations")
	first := sock.Wait(t, 5*time.Second, 0, "EXTEND_TIMEOUT_USEC=60000")
	sock.Wait(t, 5*time.Second, first+1, "EXTEND_TIMEOUT_USEC=60000")
	sock.Wait(t, 5*time.Second, first+2, "EXTEND_TIMEOUT_USEC=60000")
	done()
	done() // twice is harmless
	n.Ready("")
	ready := sock.Wait(t, 5*time.Second, 0, "READY=1")
	time.Sleep(5 * extendEvery)
	if i := sock.Index(ready, "EXTEND_TIMEOUT_USEC=60000"); i >= 0 {
		t.Errorf("EXTEND_TIMEOUT_USEC after done: %q", sock.Messages())
	}
}

// TestOutsideSystemd: without NOTIFY_SOCKET nothing is sent and nothing
// fails, and a nil Notifier does nothing.
func TestOutsideSystemd(t *testing.T) {
	sock := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", "")
	var logs bytes.Buffer
	for _, n := range []*Notifier{New(slog.New(slog.NewTextHandler(&logs, nil))), nil} {
		n.Status("x")
		n.Ready("")
		n.Extending("y")()
		n.Stopping()
	}
	time.Sleep(50 * time.Millisecond)
	if msgs := sock.Messages(); len(msgs) > 0 {
		t.Errorf("sent %q", msgs)
	}
	if logs.Len() > 0 {
		t.Errorf("logged %s", logs.String())
	}
}

// TestSendFailureLoggedOnce: a socket nobody listens on is worth one
// warning, not one per message.
func TestSendFailureLoggedOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	var logs bytes.Buffer
	n := New(slog.New(slog.NewTextHandler(&logs, nil)))
	n.Status("a")
	n.Ready("")
	n.Stopping()
	if got := strings.Count(logs.String(), "cannot notify systemd"); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, logs.String())
	}
}
