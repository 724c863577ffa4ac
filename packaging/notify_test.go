package packaging

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/testutil"
)

// TestNotify runs the built binaries as systemd runs a Type=notify unit,
// with NOTIFY_SOCKET pointing at a socket the test reads, and checks what
// the units rely on (systemd/*.service): READY=1 only once the service can
// serve, EXTEND_TIMEOUT_USEC while migrations hold the start, STATUS= for
// p2xmpp's link, STOPPING=1 at SIGTERM.
func TestNotify(t *testing.T) {
	bin := binaries(t)
	t.Run("p2http", func(t *testing.T) {
		t.Parallel()
		testNotifyP2HTTP(t, filepath.Join(bin, "p2http"))
	})
	t.Run("p2xmpp", func(t *testing.T) {
		t.Parallel()
		testNotifyP2XMPP(t, filepath.Join(bin, "p2xmpp"))
	})
}

// testNotifyP2HTTP starts p2http on a PostgreSQL schema whose migration
// table the test holds locked, as a long migration (or another instance's)
// would: p2http must keep asking for more start-up time and not be ready
// until the lock goes and the migrations are done.
func testNotifyP2HTTP(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := dbtest.PostgresSchemaURL(t)
	conn, err := sql.Open("postgres", url) // search_path is the fresh schema
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// golang-migrate's table, as it creates it, held by a transaction:
	// reading the version waits for it.
	if _, err := conn.ExecContext(ctx, `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	sock := testutil.NewNotifySocket(t)
	p := start(t, bin, []string{
		"NOTIFY_SOCKET=" + sock.Path,
		"P2_DATABASE_URL=" + url,
		"P2_SECRET_KEY=" + strings.Repeat("k", 32),
		"P2_LISTEN=127.0.0.1:0",
	})

	const extend = "EXTEND_TIMEOUT_USEC=15000000" // 15 s, every 5 s
	sock.Wait(t, 20*time.Second, 0, "STATUS=applying database migrations")
	first := sock.Wait(t, 20*time.Second, 0, extend)
	// The next one comes 5 s later, the migrations still held.
	sock.Wait(t, 10*time.Second, first+1, extend)
	if i := sock.Index(0, "READY=1"); i >= 0 {
		t.Fatalf("READY=1 while the migrations wait: %q", sock.Messages())
	}
	p.running(t)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	ready := sock.Wait(t, 20*time.Second, 0, "READY=1")
	msg := sock.Messages()[ready]
	addr, ok := strings.CutPrefix(msg, "READY=1\nSTATUS=serving on ")
	if !ok {
		t.Fatalf("READY=1 message %q, want READY=1 and STATUS=serving on ADDR", msg)
	}
	// Ready means serving: the first request is answered.
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz right after READY=1: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz right after READY=1: %s", res.Status)
	}
	var version int
	if err := conn.QueryRowContext(ctx, `SELECT version FROM schema_migrations`).Scan(&version); err != nil || version == 0 {
		t.Errorf("at READY=1 the schema is at version %d (%v): the migrations are not done", version, err)
	}

	p.stop(t, 30*time.Second)
	stopping := sock.Index(ready, "STOPPING=1")
	if stopping < 0 {
		t.Fatalf("no STOPPING=1 after SIGTERM: %q", sock.Messages())
	}
	if i := sock.Index(ready, extend); i >= 0 {
		t.Errorf("EXTEND_TIMEOUT_USEC after READY=1: %q", sock.Messages())
	}
	t.Logf("p2http notified: %q", sock.Messages())
}

// testNotifyP2XMPP starts p2xmpp while the XMPP server is down: it must be
// ready all the same, say it is not connected, then connected once the
// server is back, reconnecting when the link drops.
func testNotifyP2XMPP(t *testing.T, bin string) {
	const jid, secret = "push.localhost", "component-secret"
	srv := newComponentServer(t, jid, secret)
	sock := testutil.NewNotifySocket(t)
	p := start(t, bin, []string{
		"NOTIFY_SOCKET=" + sock.Path,
		"P2XMPP_JID=" + jid,
		"P2XMPP_SECRET=" + secret,
		"P2XMPP_SERVER=" + srv.addr,
		"P2XMPP_API=http://127.0.0.1:9", // nothing: p2http need not be up either
	})

	down := "STATUS=not connected: connecting to the XMPP server " + srv.addr
	ready := sock.Wait(t, 20*time.Second, 0, "READY=1")
	if msg := sock.Messages()[ready]; msg != "READY=1\n"+down {
		t.Fatalf("READY=1 message %q, want %q", msg, "READY=1\n"+down)
	}
	// Still running, and still trying, while the server refuses.
	testutil.Eventually(t, 10*time.Second, "p2xmpp tried to connect twice", func() bool { return srv.refused.Load() >= 2 })
	p.running(t)

	up := "STATUS=connected to the XMPP server " + srv.addr
	srv.accept()
	connected := sock.Wait(t, 20*time.Second, ready, up)
	srv.drop()
	sock.Wait(t, 20*time.Second, connected, "STATUS=not connected: reconnecting to the XMPP server "+srv.addr)
	sock.Wait(t, 20*time.Second, connected+1, up)

	p.stop(t, 30*time.Second)
	if sock.Index(ready, "STOPPING=1") < 0 {
		t.Fatalf("no STOPPING=1 after SIGTERM: %q", sock.Messages())
	}
	t.Logf("p2xmpp notified: %q", sock.Messages())
}

// componentServer is the server side of XEP-0114, as far as p2xmpp's
// connecting goes: it closes every connection at once (a server that is
// down) until accept, then completes the handshake and holds the
// connection until drop.
type componentServer struct {
	jid, secret, addr string
	accepting         atomic.Bool
	refused           atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
}

func newComponentServer(t *testing.T, jid, secret string) *componentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &componentServer{jid: jid, secret: secret, addr: ln.Addr().String()}
	go func() {
		for id := 0; ; id++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.accepting.Load() {
				s.refused.Add(1)
				c.Close()
				continue
			}
			go s.handshake(c, fmt.Sprintf("stream-%d", id))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.drop()
	})
	return s
}

func (s *componentServer) accept() { s.accepting.Store(true) }

// drop closes the connections held.
func (s *componentServer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *componentServer) handshake(c net.Conn, id string) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	dec := xml.NewDecoder(c)
	if start, err := nextStart(dec); err != nil || start.Name.Local != "stream" {
		c.Close()
		return
	}
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='%s' from='%s'>`, id, s.jid)
	hs, err := nextStart(dec)
	var digest string
	if err != nil || hs.Name.Local != "handshake" || dec.DecodeElement(&digest, &hs) != nil {
		c.Close()
		return
	}
	if sum := sha1.Sum([]byte(id + s.secret)); digest != hex.EncodeToString(sum[:]) {
		c.Close()
		return
	}
	fmt.Fprint(c, `<handshake/>`)
	c.SetDeadline(time.Time{})
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start, nil
		}
	}
}
