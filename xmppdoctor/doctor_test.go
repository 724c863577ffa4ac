package xmppdoctor

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/xmppserver"
)

func TestProsody(t *testing.T)  { testServer(t, xmppserver.Prosody) }
func TestEjabberd(t *testing.T) { testServer(t, xmppserver.Ejabberd) }

// find returns the check named name, failing the test when there is none.
func find(t *testing.T, r *checkup.Report, name string) checkup.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == name {
			return c
		}
	}
	t.Fatalf("no check %s in:\n%s", name, text(r))
	return checkup.Check{}
}

// expect fails the test unless the check named name has status s and its
// detail and fix hold the strings given ("fix:" starts the fix's).
func expect(t *testing.T, r *checkup.Report, name string, s checkup.Status, holds ...string) {
	t.Helper()
	c := find(t, r, name)
	inFix := false
	for _, h := range holds {
		if h == "fix:" {
			inFix = true
			continue
		}
		where := c.Message
		if inFix {
			where = c.Fix
		}
		if !strings.Contains(where, h) {
			t.Errorf("%s: %q does not hold %q", name, where, h)
		}
	}
	if c.Status != s {
		t.Errorf("%s is %s, want %s:\n%s", name, c.Status, s, text(r))
	}
}

func text(r *checkup.Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

// names returns the names of the checks, in order.
func names(r *checkup.Report) string {
	var n []string
	for _, c := range r.Checks {
		n = append(n, c.ID)
	}
	return strings.Join(n, " ")
}

// testServer runs the doctor against a real server of kind and a real
// p2http: a good configuration passes every check; each mistake fails the
// check it belongs to, naming its cause.
func testServer(t *testing.T, kind xmppserver.Kind) {
	srv := startServer(t, kind)
	p2 := startP2HTTP(t, compJID)
	ctx := context.Background()
	run := func(change func(*Config)) *checkup.Report {
		cfg := p2.config(srv)
		change(&cfg)
		return Run(ctx, cfg)
	}

	t.Run("good", func(t *testing.T) {
		r := run(func(c *Config) { c.Account = "alice@example.org" })
		for _, c := range r.Checks {
			if c.Status != checkup.OK || c.Fix != "" {
				t.Errorf("%s: %s %s (fix: %s)", c.ID, c.Status, c.Message, c.Fix)
			}
		}
		if !r.OK || names(r) != "config handshake disco account-route p2http api-token" {
			t.Fatalf("checks %s, ok %v:\n%s", names(r), r.OK, text(r))
		}
		expect(t, r, CheckDisco, checkup.OK, "identity pubsub/push", "urn:xmpp:push:0", "register-push-fcm")
		expect(t, r, CheckAccount, checkup.OK, "example.org answered")
		expect(t, r, CheckP2HTTP, checkup.OK, "serves push.example.org with fcm")
		if out := text(r); strings.Contains(out, "alice") || strings.Contains(out, compSecret) || strings.Contains(out, apiToken) {
			t.Fatalf("the report names the account, the secret or the token:\n%s", out)
		}
	})

	t.Run("no account", func(t *testing.T) {
		r := run(func(*Config) {})
		if !r.OK || names(r) != "config handshake disco p2http api-token" {
			t.Fatalf("checks %s, ok %v:\n%s", names(r), r.OK, text(r))
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		r := run(func(c *Config) { c.Secret = "not-the-secret" })
		expect(t, r, CheckHandshake, checkup.Fail, "refused the component secret", "not-authorized", "P2XMPP_SECRET", "fix:", "P2XMPP_SECRET")
		expect(t, r, CheckDisco, checkup.Warn, "not checked")
		expect(t, r, CheckP2HTTP, checkup.OK)
		if r.OK || strings.Contains(text(r), "not-the-secret") {
			t.Fatalf("ok %v:\n%s", r.OK, text(r))
		}
	})

	t.Run("unknown component", func(t *testing.T) {
		r := run(func(c *Config) { c.JID = "other.example.org" })
		if kind == xmppserver.Prosody {
			expect(t, r, CheckHandshake, checkup.Fail, "has no component other.example.org", "host-unknown", "fix:", "P2XMPP_JID")
		} else {
			// ejabberd answers an unknown component as a wrong secret.
			expect(t, r, CheckHandshake, checkup.Fail, "not-authorized", "P2XMPP_SECRET", "ejabberd answers the same when its ejabberd_service listener has no component other.example.org")
		}
		expect(t, r, CheckP2HTTP, checkup.Fail, "serves the jid push.example.org (P2_JID), this component is other.example.org", "fix:", "P2_JID")
	})

	t.Run("virtual host", func(t *testing.T) {
		r := run(func(c *Config) { c.JID = "example.org" })
		if kind == xmppserver.Prosody {
			expect(t, r, CheckHandshake, checkup.Fail, "has no component example.org")
		} else {
			expect(t, r, CheckHandshake, checkup.Fail, "example.org is one of the XMPP server's own virtual hosts", "fix:", "push.example.org")
		}
	})

	t.Run("client port", func(t *testing.T) {
		r := run(func(c *Config) { c.Server = srv.C2SAddr })
		expect(t, r, CheckHandshake, checkup.Fail, "is not an XMPP component listener", "fix:", "P2XMPP_SERVER")
	})

	t.Run("unreachable domain", func(t *testing.T) {
		// The test servers have no s2s: Prosody answers not-allowed,
		// ejabberd forbidden.
		r := run(func(c *Config) { c.Account = "alice@elsewhere.test" })
		expect(t, r, CheckAccount, checkup.Fail, "elsewhere.test", "cannot reach the component", "fix:", "s2s")
		expect(t, r, CheckHandshake, checkup.OK)
		expect(t, r, CheckDisco, checkup.OK)
		if strings.Contains(text(r), "alice") {
			t.Fatalf("the report names the account:\n%s", text(r))
		}
	})

	t.Run("not an account", func(t *testing.T) {
		r := run(func(c *Config) { c.Account = "alice@" })
		expect(t, r, CheckAccount, checkup.Fail, "--account is not an address")
		if strings.Contains(text(r), "alice") {
			t.Fatalf("the report names the account:\n%s", text(r))
		}
	})

	t.Run("p2http down", func(t *testing.T) {
		r := Run(ctx, configFor("http://127.0.0.1:1", apiToken, srv))
		expect(t, r, CheckP2HTTP, checkup.Fail, "no answer from p2http at http://127.0.0.1:1", "connection refused", "fix:", "P2XMPP_API")
		expect(t, r, CheckAPIToken, checkup.Warn, "not checked")
		// The checks through the server do not need p2http.
		expect(t, r, CheckHandshake, checkup.OK)
		expect(t, r, CheckDisco, checkup.OK)
	})

	t.Run("wrong token", func(t *testing.T) {
		r := Run(ctx, configFor(p2.URL, "not-the-api-token-0123", srv))
		expect(t, r, CheckAPIToken, checkup.Fail, "refuses P2XMPP_API_TOKEN", "fix:", "P2_API_TOKENS")
		expect(t, r, CheckP2HTTP, checkup.OK)
	})
}
