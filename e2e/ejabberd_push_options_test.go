package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

// receipt is a message without a body that ejabberd's mod_offline stores
// (it is not a standalone chat state) and so mod_push pushes for.
const receipt = `<message type='chat' to='alice@example.org' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`

// TestEjabberdPushOptions shows what p2xmpp receives under the mod_push
// options of docs/p2xmpp.md, and what reaches FCM:
//   - by default (notify_on: all, the only behaviour before 23.10) a stanza
//     without a body is pushed, without a summary, so at normal priority; a
//     message with a body is pushed at high priority;
//   - notify_on: messages (23.10 and later) pushes nothing for the stanza
//     without a body; an ejabberd before 23.10 refuses to start with it;
//   - include_sender and include_body put the sender (a bare JID on 24.12)
//     and the body into the summary: neither goes further than p2xmpp.
func TestEjabberdPushOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		modPush  map[string]string
		bodyless bool // the stanza without a body is pushed
	}{
		{"default", nil, true},
		{"notify_on messages", map[string]string{"notify_on": "messages"}, false},
		{"include sender and body", map[string]string{"include_sender": "true", "include_body": "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xmppserver.EnsureInstalled(t, xmppserver.Ejabberd)
			for opt := range tc.modPush {
				ok, err := xmppserver.EjabberdModPushHas(opt)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					// An ejabberd before 23.10 has no notify_on, and
					// refuses the option, as docs/p2xmpp.md says.
					srv := xmppserver.NewEjabberd(t, xmppserver.Options{ModPush: tc.modPush, StartTimeout: 20 * time.Second})
					err := srv.TryStart()
					if err == nil || !strings.Contains(err.Error(), "Unknown option: "+opt) {
						t.Fatalf("%s's mod_push has no %s, yet it did not refuse the option: %v", srv, opt, err)
					}
					return
				}
			}
			s := newStackWith(t, xmppserver.Ejabberd, stackConfig{modPush: tc.modPush})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
			s.enablePush(ctx, alice, s.registerPush(ctx, alice, "fcm-token", "c0ffee1234567890"))
			alice.Close(t)

			bob := s.srv.Dial(ctx, t, "bob", "bob-pw")
			bob.Send(ctx, t, receipt)
			want := 1 // the message with a body
			if tc.bodyless {
				want++
				if p := priority(t, s.waitFCM(1, 20*time.Second)[0]); p != "normal" {
					t.Fatalf("the stanza without a body was pushed at priority %q, want normal", p)
				}
			} else {
				waitServerLog(t, s.srv, "Suppressing notification for stanza without payload")
			}
			bob.Send(ctx, t, `<message type='chat' to='alice@example.org' id='m2'><body>words from bob</body></message>`)
			bob.Close(t)
			msgs := s.waitFCM(want, 20*time.Second)
			if len(msgs) != want {
				t.Fatalf("FCM got %d messages, want %d", len(msgs), want)
			}
			if p := priority(t, msgs[want-1]); p != "high" {
				t.Fatalf("the message with a body was pushed at priority %q, want high", p)
			}
			if pushes := s.pushRequests(); pushes != want {
				t.Fatalf("p2http got %d pushes, want %d", pushes, want)
			}
			for _, m := range msgs {
				if body := string(m.Body); strings.Contains(body, "bob") || strings.Contains(body, "words") {
					t.Fatalf("the sender or the body reached FCM: %s", body)
				}
			}
			if logs := s.p2xmpp.Logs() + s.p2http.Logs(); strings.Contains(logs, "bob@") || strings.Contains(logs, "words from") {
				t.Fatalf("the sender or the body reached a log:\n%s", logs)
			}
		})
	}
}

// priority is an FCM message's Android priority.
func priority(t *testing.T, r fake.Request) string {
	t.Helper()
	p := r.FCMMessage().Android.Priority
	if p == "" {
		t.Fatalf("FCM message without android.priority: %s", r.Body)
	}
	return p
}
