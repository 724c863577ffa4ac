package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

func TestAppsProsody(t *testing.T)  { testApps(t, xmppserver.Prosody) }
func TestAppsEjabberd(t *testing.T) { testApps(t, xmppserver.Ejabberd) }

// testApps runs p2http with a second app (P2_CONFIG) in its own FCM
// project. One phone holds two push registrations, one per app, each
// enabled with the address it registered at; a message wakes it through
// both, each push through its own app's project only. A local part naming
// no app is refused with item-not-found.
func testApps(t *testing.T, kind xmppserver.Kind) {
	s := newStackWith(t, kind, stackConfig{apps: []string{"quicksy"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const appJID = "quicksy@" + pushJID

	alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
	def := s.registerPush(ctx, alice, "default-app-token", "device-default")
	q := s.registerPushAt(ctx, alice, appJID, "quicksy-app-token", "device-quicksy")
	typ, reply := alice.SendIQ(ctx, `<iq type='set' to='nosuchapp@`+pushJID+`'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='token'><value>t</value></field>`+
		`<field var='android-id'><value>d</value></field></x></command></iq>`)
	if typ != "error" || !strings.Contains(reply, "item-not-found") {
		t.Fatalf("register at an unknown app: %s %s", typ, reply)
	}
	s.enablePush(ctx, alice, def)
	s.enablePush(ctx, alice, q)
	alice.Close(t)

	s.message(ctx, "wake both apps")
	qm := s.waitProject(s.appFCM["quicksy"], 1, 20*time.Second)
	dm := s.waitFCM(1, 20*time.Second)
	time.Sleep(500 * time.Millisecond) // a crossed push would arrive as a second message
	qm, dm = s.waitProject(s.appFCM["quicksy"], 1, 0), s.waitFCM(1, 0)
	if len(qm) != 1 || len(dm) != 1 {
		t.Fatalf("quicksy's project got %d messages, the default one %d; want one each", len(qm), len(dm))
	}
	check := func(name string, r fake.Request, token, device string) {
		if msg := r.FCMMessage(); msg.Token != token || msg.Data.Account != device {
			t.Fatalf("%s got %s", name, r.Body)
		}
	}
	check("quicksy's project", qm[0], "quicksy-app-token", p2http.DeviceHash("alice@example.org", "device-quicksy"))
	check("the default project", dm[0], "default-app-token", p2http.DeviceHash("alice@example.org", "device-default"))
	if !strings.Contains(qm[0].Path, "/projects/p2http-quicksy/") {
		t.Fatalf("quicksy's push went to %s", qm[0].Path)
	}
}
