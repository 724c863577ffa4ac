// Package e2e runs p2xmpp and p2http, as built binaries, against real
// Prosody and ejabberd servers, with real XMPP clients playing the phone and
// its contact and a fake FCM recording what would wake the phone.
package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

func TestProsody(t *testing.T)  { testServer(t, xmppserver.Prosody, stackConfig{}) }
func TestEjabberd(t *testing.T) { testServer(t, xmppserver.Ejabberd, stackConfig{}) }

// The same scenarios with p2http in the stateless mode: no database.
func TestProsodyStateless(t *testing.T) {
	testServer(t, xmppserver.Prosody, stackConfig{stateless: true})
}
func TestEjabberdStateless(t *testing.T) {
	testServer(t, xmppserver.Ejabberd, stackConfig{stateless: true})
}

// testServer walks the five scenarios of a phone's life on one server.
func testServer(t *testing.T, kind xmppserver.Kind, cfg stackConfig) {
	s := newStackWith(t, kind, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const androidID = "c0ffee1234567890"
	device := p2http.DeviceHash("alice@example.org", androidID)

	// 1. Register, enable, go offline; a message wakes the right account.
	alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
	reg := s.registerPush(ctx, alice, "fcm-token-one", androidID)
	s.enablePush(ctx, alice, reg)
	alice.Close(t)
	s.message(ctx, "first secret words")
	msgs := s.waitFCM(1, 20*time.Second)
	m := msgs[0].FCMMessage()
	if m.Token != "fcm-token-one" || m.Data.Account != device {
		t.Fatalf("FCM message %s, want token fcm-token-one and account %s", msgs[0].Body, device)
	}
	if m.Android.Priority != "high" {
		t.Fatalf("a message with a body was not pushed at high priority: %s", msgs[0].Body)
	}
	if strings.Contains(string(msgs[0].Body), "secret words") || strings.Contains(string(msgs[0].Body), "bob") {
		t.Fatalf("message content reached FCM: %s", msgs[0].Body)
	}

	// 2. Registering again with a new token keeps node and secret; the next
	// push goes to the new token. In the stateless mode the token lives in
	// the node: registering again gives a new node, which the phone enables
	// in place of the old one. With the same token it gets the same node.
	alice = s.srv.Dial(ctx, t, "alice", "alice-pw")
	again := s.registerPush(ctx, alice, "fcm-token-two", androidID)
	if cfg.stateless {
		if again.node == reg.node || again.secret == reg.secret || again.jid != reg.jid {
			t.Fatalf("stateless re-registration with a new token kept node or secret: %+v -> %+v", reg, again)
		}
		if same := s.registerPush(ctx, alice, "fcm-token-two", androidID); same != again {
			t.Fatalf("stateless re-registration with the same token changed the node: %+v -> %+v", again, same)
		}
		s.disablePush(ctx, alice, reg)
		s.enablePush(ctx, alice, again)
		reg = again
	}
	alice.Close(t)
	if again != reg {
		t.Fatalf("re-registration changed the registration: %+v -> %+v", reg, again)
	}
	s.message(ctx, "second")
	if msgs = s.waitFCM(2, 20*time.Second); msgs[1].FCMMessage().Token != "fcm-token-two" {
		t.Fatalf("push after re-registration went to %s", msgs[1].Body)
	}

	// 4. p2http is away while p2xmpp stays connected: the server is told to
	// wait, keeps the registration, and the next message is pushed.
	s.p2http.stop()
	s.message(ctx, "while p2http is away")
	waitServerLog(t, s.srv, map[xmppserver.Kind]string{
		xmppserver.Prosody:  "NOT increasing error count",
		xmppserver.Ejabberd: "temporarily",
	}[kind])
	s.p2http.start()
	s.waitHTTP()
	s.message(ctx, "p2http is back")
	s.waitFCM(3, 20*time.Second)

	// 5. The XMPP server restarts; p2xmpp reconnects by itself.
	s.srv.Stop(t)
	s.srv.Start(t)
	s.p2xmpp.waitLog("connected to the XMPP server", 2, 30*time.Second)
	s.message(ctx, "after the restart")
	s.waitFCM(4, 30*time.Second)

	// 3. FCM reports the token dead: p2http removes the registration and
	// the server stops pushing to it.
	s.fcm.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
	s.message(ctx, "to a dead token")
	s.waitFCM(5, 20*time.Second)
	waitServerLog(t, s.srv, "isabling push")
	if !cfg.stateless { // a stateless node has nothing to remove: the server dropping it is what counts
		res, err := http.Get(s.api + "/v1/registration?node=" + url.QueryEscape(reg.node))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("registration after UNREGISTERED: %d, want 404", res.StatusCode)
		}
	}
	pushes, sent := s.pushRequests(), len(s.fcm.Requests())
	s.message(ctx, "after the registration was dropped")
	time.Sleep(2 * time.Second)
	if s.pushRequests() != pushes || len(s.fcm.Requests()) != sent {
		t.Fatalf("the server kept pushing after the token died: %d→%d push requests", pushes, s.pushRequests())
	}

	// Neither binary logged a token, secret, body or account JID.
	for _, p := range []*proc{s.p2http, s.p2xmpp} {
		for _, secret := range []string{"fcm-token-one", "fcm-token-two", reg.secret, "secret words", "alice@", "bob@", androidID} {
			if strings.Contains(p.Logs(), secret) {
				t.Errorf("%s logged %q", p.name, secret)
			}
		}
	}
}

// waitServerLog waits until the XMPP server's log holds substr.
func waitServerLog(t *testing.T, srv *xmppserver.Server, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(srv.Logs(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q:\n%s", srv, substr, tail(srv.Logs(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
