package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	p2 := startP2HTTP(t, compJID)
	srv := newCompServer(t, compJID, compSecret)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"P2XMPP_JID": compJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": srv.addr,
		"P2XMPP_API": p2.URL, "P2XMPP_API_TOKEN": apiToken, "P2XMPP_METRICS": addr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard) }()
	defer func() { cancel(); <-done }()
	c := srv.Accept(5 * time.Second)
	c.Send(fmt.Sprintf(pingStanza, "ping-1"))
	expectReply(t, c.Read(5*time.Second), "result", "ping-1", compJID, "example.com")
	node, _ := register(t, c, "reg-1")
	c.Send(publishStanza("pub-1", node, "wrong-secret-wrong-secret"))
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
		`p2xmpp_errors_total{condition="forbidden",type="auth"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}
