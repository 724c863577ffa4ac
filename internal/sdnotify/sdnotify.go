// Package sdnotify tells systemd how a Type=notify service is doing, over
// the socket systemd names in NOTIFY_SOCKET (sd_notify(3)), through
// go-systemd's daemon package: ready, its status line, a start-up that
// takes longer, stopping. Outside systemd, where NOTIFY_SOCKET is unset,
// every call does nothing.
package sdnotify

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// extendEvery is how often Extending asks systemd for more start-up time,
// each time three periods from then, so that one late tick does not let
// the start time out. A variable so that tests can shorten it.
var extendEvery = 5 * time.Second

// A Notifier sends one service's state to systemd. Its methods may be
// called from any goroutine; the messages reach systemd in the order of
// the calls. The methods of a nil *Notifier do nothing.
type Notifier struct {
	log *slog.Logger
	on  bool // NOTIFY_SOCKET is set

	mu       sync.Mutex
	status   string
	warned   bool
	stopping bool
}

// New returns a Notifier for the socket in NOTIFY_SOCKET, which logs to log
// the first message it fails to send.
func New(log *slog.Logger) *Notifier {
	return &Notifier{log: log, on: os.Getenv("NOTIFY_SOCKET") != ""}
}

// Ready tells systemd that the service is up (READY=1), with status as
// its status line, or when status is "" the last that Status set.
func (n *Notifier) Ready(status string) {
	if n == nil || !n.on {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if status != "" {
		n.status = oneLine(status)
	}
	msg := daemon.SdNotifyReady
	if n.status != "" {
		msg += "\nSTATUS=" + n.status
	}
	n.send(msg)
}

// Status sets the line systemctl status shows for the service (STATUS=).
// After Stopping it does nothing: a link that drops while stopping is no
// news.
func (n *Notifier) Status(status string) {
	if n == nil || !n.on {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return
	}
	n.status = oneLine(status)
	n.send("STATUS=" + n.status)
}

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func (n *Notifier) Stopping() {
	if n == nil || !n.on {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopping = true
	n.status = "stopping"
	n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping")
}

// Extending sets status and, until done is called, asks systemd for more
// time to start (EXTEND_TIMEOUT_USEC, 15 s), at once and then every 5 s, so that TimeoutStartSec= does not end a start-up step of
// unknown length, such as database migrations. systemd only ever extends
// the timeout by it, never shortens it.
func (n *Notifier) Extending(status string) (done func()) {
	if n == nil || !n.on {
		return func() {}
	}
	n.Status(status)
	msg := fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", (3 * extendEvery).Microseconds())
	n.sendLocked(msg)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(extendEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n.sendLocked(msg)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-stopped
		})
	}
}

func (n *Notifier) sendLocked(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.send(msg)
}

// send sends msg; n.mu is held. A failure is logged once: systemd would
// then end the start by its timeout, and the log says why.
func (n *Notifier) send(msg string) {
	if _, err := daemon.SdNotify(false, msg); err != nil && !n.warned {
		n.warned = true
		n.log.Warn("cannot notify systemd (NOTIFY_SOCKET)", "err", err)
	}
}

// oneLine makes status one line of a message, which could otherwise
// carry further assignments.
func oneLine(status string) string { return strings.ReplaceAll(status, "\n", " ") }
