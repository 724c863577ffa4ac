package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/xmppserver"
)

// One Prosody hosts example.org and evil.example, and one p2xmpp (with an
// API token, as in production) forwards the pushes of both. mallory on
// evil.example enables push with made-up nodes and secrets, and with
// alice's real node under a wrong secret; trudy writes to mallory, so that
// evil.example publishes garbage to the component, round after round, while
// bob writes to alice on example.org.
//
// Every genuine push of alice's gets 200 and reaches FCM. The garbage is
// answered item-not-found until the budget of failures of its caller (the
// p2xmpp's token) and claimed domain (evil.example, which the publishing
// server's address vouches for) is spent, then 429, a `wait` error that
// keeps Prosody sending. The budget is the pair's: a budget keyed by the
// caller alone would be spent by evil.example and starve example.org,
// since one p2xmpp forwards every domain's pushes. On main the garbage was
// never limited but by evil.example's own domain budget, and the count of
// 429 answers below was 0.
func TestProsodyGarbageFromAnotherDomain(t *testing.T) {
	const (
		failBurst = 5 // P2_LIMIT_PUSH_FAILED's burst; the refill is negligible
		bogus     = 4 // made-up registrations of mallory's, beside alice's node: Prosody's push_max_devices is 5
		rounds    = 5
		token     = "p2xmpp-api-token-0123456789"
	)
	s := newStackWith(t, xmppserver.Prosody, stackConfig{
		extraDomains: []string{"evil.example"},
		// Prosody keeps a registration through this many permanent errors:
		// the garbage goes on arriving after its first 404s.
		pushMaxErrors: 100,
		p2httpEnv:     map[string]string{"P2_LIMIT_PUSH_FAILED": fmt.Sprintf("0.001:%d", failBurst), "P2_API_TOKENS": token},
		p2xmppEnv:     map[string]string{"P2XMPP_API_TOKEN": token},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.srv.Register(t, "mallory@evil.example", "mallory-pw")
	s.srv.Register(t, "trudy@evil.example", "trudy-pw")

	alice := s.srv.Dial(ctx, t, "alice", "alice-pw")
	reg := s.registerPush(ctx, alice, "alice-fcm-token", "alice-android-id")
	s.enablePush(ctx, alice, reg)
	alice.Close(t)

	mallory := s.srv.Dial(ctx, t, "mallory@evil.example", "mallory-pw")
	for i := range bogus {
		s.enablePush(ctx, mallory, registration{jid: pushJID, node: fmt.Sprintf("bogusNode%03d", i), secret: "bogus-secret-of-mallory"})
	}
	s.enablePush(ctx, mallory, registration{jid: pushJID, node: reg.node, secret: "bogus-secret-of-mallory"})
	mallory.Close(t)

	trudy := s.srv.Dial(ctx, t, "trudy@evil.example", "trudy-pw")
	for round := 1; round <= rounds; round++ {
		trudy.Send(ctx, t, `<message type='chat' to='mallory@evil.example'><body>garbage round</body></message>`)
		s.message(ctx, fmt.Sprintf("genuine words %d", round))
		s.waitFCM(round, 20*time.Second)
	}
	// The last round's garbage has been answered before the counts.
	garbage := (bogus + 1) * rounds
	deadline := time.Now().Add(30 * time.Second)
	for s.pushRequests() < garbage+rounds && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	trudy.Close(t)

	msgs := s.waitFCM(rounds, 20*time.Second)
	if len(msgs) != rounds {
		t.Fatalf("FCM got %d messages, want %d: one per genuine push", len(msgs), rounds)
	}
	for _, m := range msgs {
		if tok := m.FCMMessage().Token; tok != "alice-fcm-token" {
			t.Fatalf("FCM message to %v", tok)
		}
	}
	logs := s.p2http.Logs()
	status := func(code int) int { return strings.Count(logs, fmt.Sprintf(`"route":"/v1/push","status":%d`, code)) }
	ok, notFound, limited := status(200), status(404), status(429)
	if total := s.pushRequests(); total != garbage+rounds {
		t.Fatalf("p2http answered %d pushes, want %d garbage and %d genuine", total, garbage, rounds)
	}
	if ok != rounds {
		t.Errorf("%d pushes answered 200, want %d: every genuine one and no garbage", ok, rounds)
	}
	// One round's garbage arrives at once: up to all of it may pass before
	// the first failure is charged, and no more after.
	if notFound < failBurst || notFound > bogus+1 || limited != garbage-notFound {
		t.Errorf("garbage: %d answered 404 and %d answered 429, want %d to %d, then 429 for the rest of %d",
			notFound, limited, failBurst, bogus+1, garbage)
	}
	// Prosody took the 429s for what they are: temporary. It logs so once
	// it has read p2xmpp's error, which may come after p2http's answer.
	waitServerLog(t, s.srv, "NOT increasing error count")
	for _, p := range []*proc{s.p2http, s.p2xmpp} {
		for _, secret := range []string{"alice-fcm-token", reg.secret, "bogus-secret-of-mallory", "genuine words", "alice@", "mallory@", token} {
			if strings.Contains(p.Logs(), secret) {
				t.Errorf("%s logged %q", p.name, secret)
			}
		}
	}
}
