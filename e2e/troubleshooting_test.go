package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

// guidePath is the troubleshooting guide this test keeps true.
const guidePath = "../docs/troubleshooting.md"

// TestTroubleshooting provokes each case of docs/troubleshooting.md with
// the real binaries, real Prosody and ejabberd and the fake FCM and APNs,
// and checks that every line the guide quotes is one that its source
// showed: p2http's and p2xmpp's logs (default format and level), the XMPP
// server's log, the stanza the phone got, /readyz, the registration
// look-up. "…" in a quote stands for any text.
//
// Every case marker of the guide has a provoking function below, or is in
// tsNotProvokable with the reason, and then quotes nothing.
func TestTroubleshooting(t *testing.T) {
	text, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := parseGuide(string(text))
	if err != nil {
		t.Fatalf("%s: %v", guidePath, err)
	}
	if !checkGuide(t, cases) {
		return
	}
	var kinds []xmppserver.Kind
	for _, dc := range cases {
		if p, ok := tsProvokers[dc.name]; ok {
			for _, k := range p.servers {
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			}
		}
	}
	env := newTSEnv(t, kinds)
	for _, dc := range cases {
		p, ok := tsProvokers[dc.name]
		if !ok {
			t.Logf("%s: not provoked here: %s", dc.name, tsNotProvokable[dc.name])
			continue
		}
		t.Run(dc.name, func(t *testing.T) {
			var runs []tsRun
			for _, kind := range p.servers {
				srv := env.servers[kind]
				t.Run(string(kind), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
					defer cancel()
					c := newTSCase(t, dc.name, srv)
					p.run(ctx, c)
					runs = append(runs, tsRun{kind: kind, version: srv.Version, sources: c.sources(), private: c.private})
				})
			}
			if !t.Failed() {
				checkQuotes(t, dc, runs)
			}
		})
	}
}

// tsProvoker provokes one case on each of its servers.
type tsProvoker struct {
	servers []xmppserver.Kind
	run     func(context.Context, *tsCase)
}

// tsRun is what the sources showed when a case was provoked on one
// server.
type tsRun struct {
	kind    xmppserver.Kind
	version string
	sources map[string]string
	private []string // what no quote may hold: the run's tokens and secrets
}

// The servers a case is provoked on.
var (
	tsBoth    = []xmppserver.Kind{xmppserver.Prosody, xmppserver.Ejabberd}
	tsProsody = []xmppserver.Kind{xmppserver.Prosody}
)

// tsProvokers provoke the cases of the guide, by marker. A source is a
// name and the text captured for it: to quote a new one (the output of a
// command, say), add its name to quotedSources and capture its text in the
// provoking functions with tsCase.capture.
var tsProvokers = map[string]tsProvoker{
	"component-not-connected":   {tsBoth, provokeComponentNotConnected},
	"register-sent-to-server":   {tsBoth, provokeRegisterSentToServer},
	"item-not-found-after-move": {tsBoth, provokeItemNotFoundAfterMove},
	"fcm-unregistered":          {tsBoth, provokeFCMUnregistered},
	"fcm-sender-id-mismatch":    {tsProsody, provokeFCMSenderIDMismatch},
	"fcm-permission-denied":     {tsProsody, provokeFCMPermissionDenied},
	"fcm-key-refused":           {tsProsody, provokeFCMKeyRefused},
	"apns-bad-device-token":     {tsProsody, provokeAPNsBadDeviceToken},
	"apns-sandbox-mixup":        {tsProsody, provokeAPNsSandboxMixup},
	"apns-topic":                {tsProsody, provokeAPNsTopic},
	"apns-clock-skew":           {tsProsody, provokeAPNsClockSkew},
	"component-wrong-secret":    {tsBoth, provokeComponentWrongSecret},
	"component-wrong-port":      {tsBoth, provokeComponentWrongPort},
	"component-wrong-domain":    {tsBoth, provokeComponentWrongDomain},
	"jid-mismatch":              {tsProsody, provokeJIDMismatch},
	"api-token-refused":         {tsProsody, provokeAPITokenRefused},
	"p2http-down":               {tsBoth, provokeP2HTTPDown},
	"rate-limited":              {tsProsody, provokeRateLimited},
}

// tsNotProvokable are the cases of the guide that cannot be provoked here,
// with the reason. They quote nothing: nothing would check it.
var tsNotProvokable = map[string]string{
	"account-on-another-server": "the tests' XMPP servers run without s2s, and a second server would need DNS",
}

// checkGuide checks the guide's cases against the provokers and reports
// whether all is well.
func checkGuide(t *testing.T, cases []docCase) bool {
	t.Helper()
	seen := map[string]bool{}
	for _, dc := range cases {
		_, provoked := tsProvokers[dc.name]
		_, excused := tsNotProvokable[dc.name]
		switch {
		case seen[dc.name]:
			t.Errorf("%s:%d: case %s is marked twice", guidePath, dc.line, dc.name)
		case provoked && excused:
			t.Errorf("case %s has a provoking function and is listed as not provokable", dc.name)
		case !provoked && !excused:
			t.Errorf("%s:%d: case %s has no provoking function in tsProvokers, nor a reason in tsNotProvokable", guidePath, dc.line, dc.name)
		case excused && len(dc.blocks) > 0:
			t.Errorf("%s:%d: case %s is not provoked here, yet quotes output (line %d) that nothing checks", guidePath, dc.line, dc.name, dc.blocks[0].line)
		}
		seen[dc.name] = true
		for _, b := range dc.blocks {
			if p, ok := tsProvokers[dc.name]; ok && b.server != "" && !slices.Contains(p.servers, b.server) {
				t.Errorf("%s:%d: case %s quotes %s, on which it is not provoked", guidePath, b.line, dc.name, b.server)
			}
			for _, q := range b.quotes() {
				for _, private := range []string{"@example.org", compSecret} {
					if strings.Contains(q, private) {
						t.Errorf("%s:%d: a quote holds %q (an account JID or a secret): write … instead", guidePath, b.line, private)
					}
				}
			}
		}
	}
	for name := range tsProvokers {
		if !seen[name] {
			t.Errorf("provoking function for %s, which the guide has no marker for", name)
		}
	}
	for name := range tsNotProvokable {
		if !seen[name] {
			t.Errorf("tsNotProvokable lists %s, which the guide has no marker for", name)
		}
	}
	return !t.Failed()
}

// checkQuotes checks each block of a case against the runs on the servers
// it names: every quote must match a line of its source.
func checkQuotes(t *testing.T, dc docCase, runs []tsRun) {
	t.Helper()
	for _, b := range dc.blocks {
		var text strings.Builder
		ran, matched := false, false
		for _, r := range runs {
			if b.server != "" && r.kind != b.server {
				continue
			}
			ran = true
			if b.version != "" && !strings.HasPrefix(r.version, b.version) {
				continue
			}
			matched = true
			text.WriteString(r.sources[b.source])
		}
		where := fmt.Sprintf("%s:%d (%s %s)", guidePath, b.line, b.lang, b.source)
		switch {
		case !ran:
			t.Errorf("%s: case %s is not provoked on %s", where, dc.name, b.server)
		case !matched:
			t.Logf("%s: quotes %s %s, not the version installed here; checked on the other generation", where, b.server, b.version)
		case text.Len() == 0:
			t.Errorf("%s: case %s captured nothing from %s", where, dc.name, b.source)
		default:
			for _, q := range b.quotes() {
				for _, r := range runs {
					for _, private := range r.private {
						if private != "" && strings.Contains(q, private) {
							t.Errorf("%s: the quote %q holds %q, a token, secret or account of the test: write … instead", where, q, private)
						}
					}
				}
				if !findQuote(q, text.String()) {
					t.Errorf("%s: %q is in no line of what %s showed:\n%s", where, q, b.source, text.String())
				}
			}
		}
	}
}

// The component is not connected: its address answers disco#info with an
// error, and pushes bounce.
func provokeComponentNotConnected(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	c.offline(ctx, "fcm")
	disco := `<iq type='get' to='` + pushJID + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`
	phone := c.phone(ctx)
	if typ, reply := phone.SendIQ(ctx, disco); typ != "result" {
		c.t.Fatalf("disco#info of the connected component: %s %s", typ, reply)
	} else {
		c.capturePhone(reply)
	}
	c.p2xmpp.stop()
	// Until the server has seen the link close, a query may still be
	// handed to it and get no answer: ask again.
	for try := 0; ; try++ {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		typ, reply := phone.SendIQ(qctx, disco)
		cancel()
		if typ == "error" {
			c.capturePhone(reply)
			break
		}
		if try == 5 {
			c.t.Fatalf("disco#info of the stopped component: %s %s", typ, reply)
		}
	}
	phone.Close(c.t)
	c.message(ctx)
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "NOT increasing error count",
		xmppserver.Ejabberd: "disabling push",
	})
}

// The phone sends its registration to its own server instead of the
// component.
func provokeRegisterSentToServer(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	phone := c.phone(ctx)
	_, reply := c.command(ctx, phone, c.srv.Domain, "fcm")
	c.capturePhone(reply)
	phone.Close(c.t)
	if n := len(c.fcm.Requests()); n != 0 {
		c.t.Errorf("FCM got %d requests", n)
	}
}

// p2http moved to a new database without its registrations: the node the
// server pushes to is unknown.
func provokeItemNotFoundAfterMove(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "fcm")
	c.restartP2HTTP(map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(c.dir, "moved.db")})
	for range tsMaxErrors {
		c.message(ctx)
		c.waitServerFor(map[xmppserver.Kind]string{xmppserver.Prosody: "Got error <cancel:item-not-found"})
	}
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "Disabling push notifications",
		xmppserver.Ejabberd: "disabling push",
	})
	c.lookup(reg.node)
	c.doctor(c.p2http, "--node", reg.node)
}

// dropped waits until the server has taken the push's cancel error: Prosody
// counted it, ejabberd dropped the registration.
func (c *tsCase) dropped() {
	c.t.Helper()
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "Got error <cancel:item-not-found",
		xmppserver.Ejabberd: "disabling push",
	})
}

// kept waits until Prosody has taken the push's wait error.
func (c *tsCase) kept() {
	c.t.Helper()
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "NOT increasing error count",
		xmppserver.Ejabberd: "temporarily",
	})
}

// FCM reports the token dead.
func provokeFCMUnregistered(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "fcm")
	c.fcm.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
	c.message(ctx)
	c.dropped()
	if c.lookup(reg.node) != http.StatusNotFound {
		c.t.Error("the registration of a dead token was kept")
	}
	c.doctor(c.p2http, "--node", reg.node)
}

// p2http's credentials are of another Firebase project than the phones'
// tokens: every push is answered SENDER_ID_MISMATCH, and the registrations
// stay.
func provokeFCMSenderIDMismatch(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "fcm")
	c.fcm.Always(ptr(fake.FCMError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")))
	c.message(ctx)
	c.kept()
	c.readyz()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed: credentials of another project are not dead tokens")
	}
	c.metrics()
	c.doctor(c.p2http, "--token", c.token("fcm"))
}

// The service account may not send for the project.
func provokeFCMPermissionDenied(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "fcm")
	c.fcm.Always(ptr(fake.FCMError(403, "PERMISSION_DENIED", "",
		"Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/p2http-test' (or it may not exist).")))
	c.message(ctx)
	c.kept()
	c.readyz()
	c.metrics()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed")
	}
	c.doctor(c.p2http, "--node", reg.node)
	// Fixed: the next push is delivered, and p2http says so.
	c.fcm.Always(nil)
	c.message(ctx)
	c.p2http.waitLog("push service accepts our pushes again", 1, 20*time.Second)
	c.readyz()
}

// The service account's key was deleted or has expired.
func provokeFCMKeyRefused(ctx context.Context, c *tsCase) {
	c.startP2HTTP(map[string]string{"P2_FCM_CREDENTIALS": c.file("revoked.json", c.fcm.RevokedCredentials())})
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "fcm")
	c.message(ctx)
	c.kept()
	c.readyz()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed")
	}
	if n := c.fcm.Messages(); n != 0 {
		c.t.Errorf("FCM got %d messages without an access token", n)
	}
	c.doctor(c.p2http)
}

// APNs reports one device token bad among good ones.
func provokeAPNsBadDeviceToken(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "apns")
	c.message(ctx)
	c.waitFakes(1)
	c.apns.Next(fake.APNsError(400, "BadDeviceToken", 0))
	c.message(ctx)
	c.dropped()
	if c.lookup(reg.node) != http.StatusNotFound {
		c.t.Error("the registration of a bad device token was kept")
	}
}

// p2http sends to the APNs environment the app build does not use: every
// device token is bad.
func provokeAPNsSandboxMixup(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "apns")
	c.apns.Always(ptr(fake.APNsError(400, "BadDeviceToken", 0)))
	c.message(ctx)
	c.kept()
	c.readyz()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed")
	}
	c.doctor(c.p2http, "--node", reg.node)
}

// P2_APNS_TOPIC is not the app's bundle id: another team's, then another
// app of the team's.
func provokeAPNsTopic(ctx context.Context, c *tsCase) {
	c.apns.TeamTopics = []string{"eu.siacs.Conversations.other"}
	c.startP2HTTP(map[string]string{"P2_APNS_TOPIC": "org.example.chat"})
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "apns")
	c.message(ctx)
	c.kept()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed on TopicDisallowed")
	}
	c.doctor(c.p2http)
	c.restartP2HTTP(map[string]string{"P2_APNS_TOPIC": "eu.siacs.Conversations.other"})
	c.message(ctx)
	// The second wait error of the case: the first was TopicDisallowed's.
	c.waitServer("NOT increasing error count", 2)
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed on DeviceTokenNotForTopic to every push")
	}
}

// p2http's clock is behind Apple's by over an hour, then ahead of it.
func provokeAPNsClockSkew(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	reg := c.offline(ctx, "apns")
	c.apns.SetClockSkew(2 * time.Hour)
	c.message(ctx)
	c.kept()
	c.doctor(c.p2http)
	c.apns.SetClockSkew(-10 * time.Minute)
	c.message(ctx)
	c.waitServer("NOT increasing error count", 2)
	c.readyz()
	if c.lookup(reg.node) != http.StatusOK {
		c.t.Error("the registration was removed")
	}
}

// p2xmpp's secret is not the server's.
func provokeComponentWrongSecret(ctx context.Context, c *tsCase) {
	c.private = append(c.private, "not-the-component-secret")
	c.startP2XMPP(map[string]string{"P2XMPP_SECRET": "not-the-component-secret"})
	c.p2xmpp.waitLog("cannot connect to the XMPP server", 1, 20*time.Second)
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "Given token does not match calculated token",
		xmppserver.Ejabberd: "Failed external component handshake authentication",
	})
	c.metrics()
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// P2XMPP_SERVER names a port where nothing listens, then the server's
// client port.
func provokeComponentWrongPort(ctx context.Context, c *tsCase) {
	c.startP2XMPP(map[string]string{"P2XMPP_SERVER": fmt.Sprintf("127.0.0.1:%d", freePort(c.t))})
	c.p2xmpp.waitLog("cannot connect to the XMPP server", 1, 20*time.Second)
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
	c.startP2XMPP(map[string]string{"P2XMPP_SERVER": c.srv.C2SAddr})
	c.p2xmpp.waitLog("cannot connect to the XMPP server", 1, 20*time.Second)
	time.Sleep(time.Second) // for the server's log
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// P2XMPP_JID is not a component the server knows.
func provokeComponentWrongDomain(ctx context.Context, c *tsCase) {
	c.startP2XMPP(map[string]string{"P2XMPP_JID": "push.example.net"})
	c.p2xmpp.waitLog("cannot connect to the XMPP server", 1, 20*time.Second)
	c.waitServerFor(map[xmppserver.Kind]string{
		xmppserver.Prosody:  "does not match any configured external components",
		xmppserver.Ejabberd: "Failed external component handshake authentication",
	})
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// p2http's P2_JID is not p2xmpp's P2XMPP_JID.
func provokeJIDMismatch(ctx context.Context, c *tsCase) {
	c.startP2HTTP(map[string]string{"P2_JID": "push.example.net"})
	c.startP2XMPP(nil)
	phone := c.phone(ctx)
	_, reply := c.command(ctx, phone, pushJID, "fcm")
	c.capturePhone(reply)
	phone.Close(c.t)
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// p2xmpp's API token is not one of p2http's.
func provokeAPITokenRefused(ctx context.Context, c *tsCase) {
	c.private = append(c.private, "the-right-api-token-0123", "a-wrong-api-token-0123")
	c.startP2HTTP(map[string]string{"P2_API_TOKENS": "the-right-api-token-0123"})
	c.startP2XMPP(map[string]string{"P2XMPP_API_TOKEN": "a-wrong-api-token-0123"})
	phone := c.phone(ctx)
	_, reply := c.command(ctx, phone, pushJID, "fcm")
	c.capturePhone(reply)
	phone.Close(c.t)
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// p2http is down while p2xmpp stays connected; then it is back.
func provokeP2HTTPDown(ctx context.Context, c *tsCase) {
	c.startP2HTTP(nil)
	c.startP2XMPP(nil)
	c.offline(ctx, "fcm")
	c.p2http.stop()
	c.message(ctx)
	c.kept()
	phone := c.phone(ctx)
	_, reply := c.command(ctx, phone, pushJID, "fcm")
	c.capturePhone(reply)
	phone.Close(c.t)
	c.p2http.start()
	c.waitReady()
	c.message(ctx)
	c.waitFakes(1)
	c.p2http.stop()
	c.p2xmpp.stop()
	c.doctor(c.p2xmpp, "--timeout", "5s")
}

// The push and registration budgets of the domain are spent.
func provokeRateLimited(ctx context.Context, c *tsCase) {
	c.startP2HTTP(map[string]string{"P2_LIMIT_PUSH_DOMAIN": "0.001:1", "P2_LIMIT_REGISTER_DOMAIN": "0.001:1"})
	c.startP2XMPP(nil)
	c.offline(ctx, "fcm")
	c.message(ctx)
	c.waitFakes(1)
	c.message(ctx)
	c.kept()
	phone := c.phone(ctx)
	_, reply := c.command(ctx, phone, pushJID, "fcm")
	c.capturePhone(reply)
	phone.Close(c.t)
	c.metrics()
}

func ptr[T any](v T) *T { return &v }
