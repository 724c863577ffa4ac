package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/xmpp"
)

func TestMetrics(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	addr := testutil.FreeAddr(t)
	env := map[string]string{"P2XMPP_JID": compJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": srv.addr,
		"P2XMPP_API": p2.URL, "P2XMPP_API_TOKEN": apiToken, "P2XMPP_METRICS": addr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard) }()
	defer func() { cancel(); <-done }()
	c := srv.Accept(5 * time.Second)
	c.Send(fmt.Sprintf(pingStanza, "ping-1"))
	expectReply(t, c.Read(5*time.Second), "result", "ping-1", compJID, "example.com")
	node, secret := register(t, c, "reg-1")
	c.Send(publishStanza("pub-1", node, "wrong-secret-wrong-secret"))
	c.Read(5 * time.Second)
	c.Send(publishStanza("pub-2", node, secret))
	c.Read(5 * time.Second)
	c.Send(`<iq type='get' from='example.com' to='` + compJID + `' id='vcard-1'><vCard xmlns='vcard-temp'/></iq>`)
	c.Read(5 * time.Second)

	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		"p2xmpp_connected 1",
		`p2xmpp_stanzas_total{kind="ping",outcome="result"} 1`,
		`p2xmpp_stanzas_total{kind="command",outcome="result"} 1`,
		// A wrong secret is the XMPP server's doing, not a failure.
		`p2xmpp_stanzas_total{kind="publish",outcome="rejected"} 1`,
		`p2xmpp_stanzas_total{kind="publish",outcome="result"} 1`,
		`p2xmpp_stanzas_total{kind="unsupported",outcome="rejected"} 1`,
		`p2xmpp_errors_total{condition="forbidden",type="auth"} 1`,
		`p2xmpp_errors_total{condition="service-unavailable",type="cancel"} 1`,
		// There from the start, at zero.
		`p2xmpp_stanzas_total{kind="publish",outcome="failed"} 0`,
		`p2xmpp_stanzas_total{kind="publish",outcome="dead_token"} 0`,
		`p2xmpp_stanzas_total{kind="command",outcome="failed"} 0`,
		`p2xmpp_errors_total{condition="remote-server-timeout",type="wait"} 0`,
		`p2xmpp_errors_total{condition="item-not-found",type="cancel"} 0`,
		`p2xmpp_build_info{goversion="` + runtime.Version() + `",version="` + buildinfo.Version(version) + `"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

// A failure counts as p2http counts a push failing with the same code, and
// p2xmpp's own as rejected unless p2xmpp is in trouble (a wait error).
func TestOutcomeOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "result"},
		{p2http.Errorf(p2http.ENOTFOUND, "stale node"), "rejected"},
		{p2http.Errorf(p2http.EFORBIDDEN, "wrong secret"), "rejected"},
		{p2http.Errorf(p2http.ERATELIMIT, "slow down"), "rejected"},
		{p2http.Errorf(p2http.EINVALID, "malformed"), "rejected"},
		{&p2http.DeadTokenError{Reason: "UNREGISTERED"}, "dead_token"},
		{p2http.Errorf(p2http.EGONE, "token dead"), "dead_token"},
		{p2http.Errorf(p2http.EUNAVAILABLE, "provider down"), "failed"},
		{p2http.Errorf(p2http.EUPSTREAM, "credentials"), "failed"},
		{p2http.Errorf(p2http.EUNREACHABLE, "p2http down"), "failed"},
		{p2http.Errorf(p2http.EUNAUTHORIZED, "p2xmpp's token refused"), "failed"},
		{xmpp.ErrJIDMismatch, "failed"},
		{xmpp.ErrShuttingDown, "failed"},
		{errors.New("a bug"), "failed"},
	} {
		if got := outcomeOf(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}
