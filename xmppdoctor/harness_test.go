package xmppdoctor

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/stack"
)

const (
	compJID    = "push.example.org"
	compSecret = "doctor-component-secret-4711"
	apiToken   = "doctor-api-token-0815-abcdef"
)

// p2httpServer is a real p2http over SQLite, with a fake FCM behind the
// real FCM sender, requiring apiToken.
type p2httpServer struct {
	URL string
}

func startP2HTTP(t *testing.T, jid string) *p2httpServer {
	t.Helper()
	f := fake.NewFCM()
	t.Cleanup(f.Close)
	sender, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	return startP2HTTPWith(t, jid, []string{apiToken}, map[p2http.Service]p2http.Sender{p2http.FCM: sender})
}

// startP2HTTPWith starts a real p2http over SQLite serving jid with the
// API tokens and the senders given (none: no push service configured).
// Without tokens it checks the Host header, as on a loopback listener.
func startP2HTTPWith(t *testing.T, jid string, tokens []string, senders map[p2http.Service]p2http.Sender) *p2httpServer {
	t.Helper()
	store := dbtest.SQLite(t)
	keys, err := keyring.New("test-server-key-0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(stack.New(stack.Config{JID: jid, Store: store, Database: store, Keyring: keys,
		Senders: apps.Given(senders, nil), Tokens: tokens,
		// As p2http on a loopback listener checks Host.
		AllowedHosts: api.HostsToCheck("127.0.0.1:8080", len(tokens) > 0, nil),
		Version:      "test", Logger: slog.New(slog.DiscardHandler)}).Handler)
	t.Cleanup(srv.Close)
	return &p2httpServer{URL: srv.URL}
}

// config is the doctor's configuration for p2xmpp attached to srv and p2.
func (p2 *p2httpServer) config(srv *xmppserver.Server) Config {
	return configFor(p2.URL, apiToken, srv)
}

func configFor(url, token string, srv *xmppserver.Server) Config {
	c, err := api.NewClient(api.ClientConfig{BaseURL: url, Token: token})
	if err != nil {
		panic(err)
	}
	return Config{JID: compJID, Secret: compSecret, Server: srv.ComponentAddr, API: url, APIToken: token != "",
		Registrar: c, Pusher: c, Describer: c, Timeout: 5 * time.Second}
}

// startServer starts a private server of kind accepting the component.
func startServer(t *testing.T, kind xmppserver.Kind) *xmppserver.Server {
	t.Helper()
	opts := xmppserver.Options{Domain: "example.org", Component: compJID, ComponentSecret: compSecret}
	if kind == xmppserver.Prosody {
		return xmppserver.StartProsody(t, opts)
	}
	return xmppserver.StartEjabberd(t, opts)
}
