package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/migrations"
)

// The multi-instance tests back docs/scaling.md: several p2http processes
// on one PostgreSQL behave as one service for everything stored, and keep
// per instance only what the document says is per instance. PostgreSQL is
// required (dbtest fails the test when it is unreachable, never skips).

const (
	miKey      = "multi-instance-server-key-0123456789abcdef"
	miOtherKey = "another-server-key-for-the-same-database-0000"
	// miCoalesce is long enough that every step below pushes well inside it.
	miCoalesce = 3 * time.Second
	// miPropagation bounds how long a write through one instance may take
	// to show through another: instances that cache registrations learn of
	// writes elsewhere asynchronously (PostgreSQL NOTIFY), within
	// milliseconds; this is far under any cache's time to live, so an
	// instance that missed the write fails the test.
	miPropagation = 2 * time.Second
)

// miInstance is one p2http process and its base URL.
type miInstance struct {
	name string
	base string
	proc *proc
}

// miStart starts a p2http on a free port with env plus P2_LISTEN, without
// waiting for it. It logs at debug: the tests count its request lines.
func miStart(t *testing.T, name string, env map[string]string) *miInstance {
	t.Helper()
	port := freePort(t)
	all := map[string]string{"P2_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "P2_LOG_FORMAT": "json", "P2_LOG_LEVEL": "debug"}
	for k, v := range env {
		all[k] = v
	}
	return &miInstance{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), proc: startProc(t, name, bins.p2http, all)}
}

// waitReady waits until the instance answers /readyz with 200, failing at
// once when the process exits.
func (in *miInstance) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(in.base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				var rd struct {
					MigrationVersion uint `json:"migration_version"`
				}
				if json.Unmarshal(body, &rd) != nil || rd.MigrationVersion == 0 {
					t.Fatalf("%s ready without a migration version: %s", in.name, body)
				}
				return
			}
		}
		select {
		case <-in.proc.done:
			t.Fatalf("%s exited instead of becoming ready:\n%s", in.name, in.proc.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s: %v\n%s", in.name, err, in.proc.Logs())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// readyOrExit waits until the instance answers /readyz with 200 (true) or
// its process exits (false).
func (in *miInstance) readyOrExit(t *testing.T, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if res, err := http.Get(in.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-in.proc.done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s neither ready nor exited within %v:\n%s", in.name, d, in.proc.Logs())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// miExit waits for the process to exit and returns its exit code.
func miExit(t *testing.T, p *proc, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s still running after %v, want it to refuse to start:\n%s", p.name, d, p.Logs())
		return 0
	}
}

// miAnswer is an HTTP answer with its JSON body decoded.
type miAnswer struct {
	status int
	body   map[string]any
	raw    string
}

func (a miAnswer) str(k string) string { s, _ := a.body[k].(string); return s }

// do sends a request with a JSON body (nil for none) and fails the test
// when there is no answer.
func (in *miInstance) do(t *testing.T, method, path string, body any) miAnswer {
	t.Helper()
	a, err := in.try(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is do for other goroutines than the test's.
func (in *miInstance) try(method, path string, body any) (miAnswer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return miAnswer{}, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, in.base+path, rd)
	if err != nil {
		return miAnswer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return miAnswer{}, fmt.Errorf("%s %s on %s: %w", method, path, in.name, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := miAnswer{status: res.StatusCode, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a, nil
}

// miReg is what register answered.
type miReg struct {
	status       int
	node, secret string
	domain       string // the account's, which pushes must name
}

func (in *miInstance) register(t *testing.T, account, deviceID, token string) miReg {
	t.Helper()
	a := in.do(t, "POST", "/v1/register", map[string]string{"service": "fcm", "account": account, "device_id": deviceID, "token": token})
	if a.status != http.StatusCreated && a.status != http.StatusOK {
		t.Fatalf("register on %s: %d %s", in.name, a.status, a.raw)
	}
	_, domain, _ := strings.Cut(account, "@")
	r := miReg{status: a.status, node: a.str("node"), secret: a.str("secret"), domain: domain}
	if len(r.node) != 12 || len(r.secret) != 24 || a.str("jid") != pushJID {
		t.Fatalf("register on %s answered %s", in.name, a.raw)
	}
	return r
}

// push pushes to r as its account's XMPP server does, naming its domain.
func (in *miInstance) push(t *testing.T, r miReg) miAnswer {
	t.Helper()
	return in.do(t, "POST", "/v1/push", map[string]any{"node": r.node, "secret": r.secret, "domain": r.domain, "important": true})
}

func (in *miInstance) lookup(t *testing.T, node string) miAnswer {
	t.Helper()
	return in.do(t, "GET", "/v1/registration?node="+url.QueryEscape(node), nil)
}

// miEventually waits up to d for cond, which says whether it holds and
// what it saw, and returns how long that took.
func miEventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, saw := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v; last saw %s", what, d, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// miWaitTokens waits until the fake FCM has received exactly n messages for
// token, and fails at once if it received more.
func miWaitTokens(t *testing.T, f *fake.FCM, token string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, tok := range f.Tokens() {
			if tok == token {
				got++
			}
		}
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("fake FCM got %d messages for %s, want %d (all: %v)", got, token, n, f.Tokens())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// miFCMEnv starts a fake FCM shared by the instances and returns the
// environment that points p2http at it.
func miFCMEnv(t *testing.T) (*fake.FCM, map[string]string) {
	t.Helper()
	f := fake.NewFCM()
	t.Cleanup(f.Close)
	dir := t.TempDir()
	ca, creds := filepath.Join(dir, "fcm-ca.pem"), filepath.Join(dir, "fcm.json")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, f.Credentials, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, map[string]string{"P2_FCM_CREDENTIALS": creds, "P2_FCM_ENDPOINT": f.Endpoint(), "SSL_CERT_FILE": ca}
}

// miOpenSQL opens the test schema directly, to look at what the instances
// stored.
func miOpenSQL(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	d, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func miQueryInt(t *testing.T, d *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestMultiInstance runs two p2http processes, A and B, started at the same
// moment on one fresh PostgreSQL schema with one server key and one (fake)
// FCM, and shows that a registration made through either is the same
// registration for both, that a write through one shows through the other
// within milliseconds (whatever either caches), and that rate limits and
// coalescing are per instance.
func TestMultiInstance(t *testing.T) {
	dbURL := dbtest.PostgresSchemaURL(t) // fails, never skips, without PostgreSQL
	fcm, env := miFCMEnv(t)
	env["P2_DATABASE_URL"] = dbURL
	env["P2_SECRET_KEY"] = miKey
	env["P2_JID"] = pushJID
	env["P2_COALESCE_WINDOW"] = miCoalesce.String()
	// A tiny refill and a burst of 10 per sending domain: each step below
	// registers accounts of a domain of its own (a push names its
	// account's domain), and the rate-limit step shows the buckets are per
	// instance.
	env["P2_LIMIT_PUSH_DOMAIN"] = "0.001:10"

	// Both start together on an empty schema: both migrate, and the
	// advisory lock makes that safe.
	a, b := miStart(t, "p2http-A", env), miStart(t, "p2http-B", env)
	a.waitReady(t)
	b.waitReady(t)
	sqlDB := miOpenSQL(t, dbURL)
	var version int
	var dirty bool
	if err := sqlDB.QueryRow(`SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil || version != int(migrations.Latest()) || dirty {
		t.Fatalf("schema_migrations after a concurrent start: version %d dirty %v err %v", version, dirty, err)
	}
	if n := miQueryInt(t, sqlDB, `SELECT count(*) FROM meta WHERE key = 'secret_key_fingerprint'`); n != 1 {
		t.Fatalf("%d key fingerprints stored, want 1", n)
	}

	t.Run("registered through A, pushed through B", func(t *testing.T) {
		reg := a.register(t, "alice@one.example", "alice-phone", "tok-alice")
		if reg.status != http.StatusCreated {
			t.Fatalf("first registration through A: %d, want 201", reg.status)
		}
		if p := b.push(t, reg); p.status != http.StatusOK || p.body["delivered"] != true {
			t.Fatalf("push through B with A's node and secret: %d %s", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-alice", 1)
		// B recorded the push in the shared database (push times may be
		// written in batches, so within a few seconds).
		miEventually(t, 5*time.Second, "last_push_at stored after B pushed", func() (bool, string) {
			n := miQueryInt(t, sqlDB, `SELECT count(*) FROM registrations WHERE node = $1 AND last_push_at IS NOT NULL`, reg.node)
			return n == 1, fmt.Sprintf("%d rows with last_push_at", n)
		})
		// A wrong secret is refused by B as by A.
		wrong := reg
		wrong.secret = strings.Repeat("A", 24)
		if p := b.push(t, wrong); p.status != http.StatusForbidden {
			t.Fatalf("push through B with a wrong secret: %d %s", p.status, p.raw)
		}
	})

	t.Run("re-registering through B keeps A's node and secret", func(t *testing.T) {
		first := a.register(t, "bob@two.example", "bob-phone", "tok-bob-1")
		if p := a.push(t, first); p.status != http.StatusOK {
			t.Fatalf("push through A: %d %s", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-bob-1", 1)
		again := b.register(t, "bob@two.example", "bob-phone", "tok-bob-2")
		if again.status != http.StatusOK || again.node != first.node || again.secret != first.secret {
			t.Fatalf("re-registration through B: %+v, want 200 with A's %+v", again, first)
		}
		// The new token is used by both instances: A, which pushed to the
		// old one a moment ago, does not hold on to it.
		if p := b.push(t, again); p.status != http.StatusOK || p.body["delivered"] != true {
			t.Fatalf("push through B: %d %s", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-bob-2", 1)
		updated := b.lookup(t, again.node).str("updated_at")
		lag := miEventually(t, miPropagation, "A sees the re-registration made through B", func() (bool, string) {
			l := a.lookup(t, first.node)
			return l.status == http.StatusOK && l.str("updated_at") == updated, l.raw
		})
		t.Logf("A saw B's re-registration after %v", lag)
		if p := a.push(t, first); p.status != http.StatusOK {
			t.Fatalf("push through A after re-registration through B: %d %s", p.status, p.raw)
		}
		// A's window for this node is open, so this may be the trailing push;
		// either way it goes to the new token, and the old one gets no more.
		miWaitTokensEventually(t, fcm, "tok-bob-2", 2)
		miWaitTokens(t, fcm, "tok-bob-1", 1)
	})

	t.Run("concurrent first registrations over both instances yield one node", func(t *testing.T) {
		const devices, callers = 4, 16
		for d := 0; d < devices; d++ {
			account, deviceID := fmt.Sprintf("race%d@example.org", d), fmt.Sprintf("race-device-%d", d)
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				out   = make([]miAnswer, callers)
				errs  = make([]error, callers)
			)
			for i := 0; i < callers; i++ {
				in := a
				if i%2 == 1 {
					in = b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					out[i], errs[i] = in.try("POST", "/v1/register", map[string]string{"service": "fcm", "account": account,
						"device_id": deviceID, "token": fmt.Sprintf("race-token-%d-%d", d, i)})
				}()
			}
			close(start)
			wg.Wait()
			created := 0
			for i, r := range out {
				if errs[i] != nil {
					t.Fatalf("device %d caller %d: %v", d, i, errs[i])
				}
				switch r.status {
				case http.StatusCreated:
					created++
				case http.StatusOK:
				default:
					t.Fatalf("device %d caller %d: %d %s", d, i, r.status, r.raw)
				}
				if r.str("node") != out[0].str("node") || r.str("secret") != out[0].str("secret") {
					t.Fatalf("device %d: callers got different registrations: %s vs %s", d, r.raw, out[0].raw)
				}
			}
			if created != 1 {
				t.Fatalf("device %d: %d answers said created, want exactly 1", d, created)
			}
			device := p2http.DeviceHash(account, deviceID)
			if n := miQueryInt(t, sqlDB, `SELECT count(*) FROM registrations WHERE device = $1`, device); n != 1 {
				t.Fatalf("device %d: %d rows, want 1", d, n)
			}
			if n := miQueryInt(t, sqlDB, `SELECT count(*) FROM registrations WHERE device = $1 AND node = $2`, device, out[0].str("node")); n != 1 {
				t.Fatalf("device %d: the stored node is not the one every caller got", d)
			}
		}
	})

	t.Run("unregister through A makes B answer 404", func(t *testing.T) {
		reg := a.register(t, "carol@four.example", "carol-phone", "tok-carol")
		if p := b.push(t, reg); p.status != http.StatusOK {
			t.Fatalf("push through B before unregistering: %d %s", p.status, p.raw)
		}
		if l := b.lookup(t, reg.node); l.status != http.StatusOK {
			t.Fatalf("registration through B before unregistering: %d %s", l.status, l.raw)
		}
		u := a.do(t, "POST", "/v1/unregister", map[string]string{"service": "fcm", "account": "carol@four.example", "device_id": "carol-phone"})
		if u.status != http.StatusNoContent {
			t.Fatalf("unregister through A: %d %s", u.status, u.raw)
		}
		lag := miEventually(t, miPropagation, "B answers 404 for the node unregistered through A", func() (bool, string) {
			l := b.lookup(t, reg.node)
			return l.status == http.StatusNotFound, l.raw
		})
		t.Logf("B answered 404 after %v", lag)
		if p := b.push(t, reg); p.status != http.StatusNotFound {
			t.Fatalf("push through B after unregistering through A: %d %s, want 404", p.status, p.raw)
		}
		if u := b.do(t, "POST", "/v1/unregister", map[string]string{"service": "fcm", "account": "carol@four.example", "device_id": "carol-phone"}); u.status != http.StatusNotFound {
			t.Fatalf("unregister through B after A: %d %s, want 404", u.status, u.raw)
		}
		miWaitTokens(t, fcm, "tok-carol", 1)
	})

	t.Run("a dead token reported through B removes the registration for A", func(t *testing.T) {
		reg := b.register(t, "dave@five.example", "dave-phone", "tok-dave")
		if p := a.push(t, reg); p.status != http.StatusOK {
			t.Fatalf("push through A: %d %s", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-dave", 1)
		fcm.Next(fake.FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
		if p := b.push(t, reg); p.status != http.StatusGone {
			t.Fatalf("push through B to a token FCM reports dead: %d %s, want 410", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-dave", 2)
		lag := miEventually(t, miPropagation, "A answers 404 for the node B removed", func() (bool, string) {
			l := a.lookup(t, reg.node)
			return l.status == http.StatusNotFound, l.raw
		})
		t.Logf("A answered 404 after %v", lag)
		if p := a.push(t, reg); p.status != http.StatusNotFound {
			t.Fatalf("push through A after B's dead token: %d %s, want 404", p.status, p.raw)
		}
		// The phone registers again through A: a new node, pushed through B.
		again := a.register(t, "dave@five.example", "dave-phone", "tok-dave-new")
		if again.status != http.StatusCreated || again.node == reg.node {
			t.Fatalf("registering again after the dead token: %+v", again)
		}
		if p := b.push(t, again); p.status != http.StatusOK || p.body["delivered"] != true {
			t.Fatalf("push through B after registering again: %d %s", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-dave-new", 1)
	})

	t.Run("rate limits are per instance", func(t *testing.T) {
		reg := a.register(t, "erin@flood.example", "erin-phone", "tok-erin")
		// flood.example has a burst of 10 and practically no refill.
		for _, in := range []*miInstance{a, b} {
			for i := 0; i < 10; i++ {
				if p := in.push(t, reg); p.status != http.StatusOK {
					t.Fatalf("push %d through %s: %d %s", i+1, in.name, p.status, p.raw)
				}
			}
			p := in.push(t, reg)
			if p.status != http.StatusTooManyRequests {
				t.Fatalf("push 11 through %s: %d %s, want 429", in.name, p.status, p.raw)
			}
		}
		// 20 pushes went through for one domain whose limit is a burst of
		// 10: each instance has buckets of its own.
	})

	t.Run("coalescing is per instance", func(t *testing.T) {
		reg := a.register(t, "frank@seven.example", "frank-phone", "tok-frank")
		if p := a.push(t, reg); p.status != http.StatusOK || p.body["delivered"] != true {
			t.Fatalf("first push through A: %d %s", p.status, p.raw)
		}
		if p := a.push(t, reg); p.status != http.StatusOK || p.body["coalesced"] != true {
			t.Fatalf("second push through A within the window: %d %s, want coalesced", p.status, p.raw)
		}
		// B knows nothing of A's window: it sends at once.
		if p := b.push(t, reg); p.status != http.StatusOK || p.body["delivered"] != true {
			t.Fatalf("push through B within A's window: %d %s, want delivered", p.status, p.raw)
		}
		miWaitTokens(t, fcm, "tok-frank", 2)
		// A's owed trailing push follows when its window has passed.
		miWaitTokensEventually(t, fcm, "tok-frank", 3)
	})

	t.Run("another server key on the same database refuses to start", func(t *testing.T) {
		other := map[string]string{}
		for k, v := range env {
			other[k] = v
		}
		other["P2_SECRET_KEY"] = miOtherKey
		c := miStart(t, "p2http-C", other)
		if code := miExit(t, c.proc, 30*time.Second); code == 0 {
			t.Fatalf("p2http with another key exited 0:\n%s", c.proc.Logs())
		}
		if logs := c.proc.Logs(); !strings.Contains(logs, "P2_SECRET_KEY") || !strings.Contains(logs, "differs") {
			t.Fatalf("p2http with another key did not name P2_SECRET_KEY:\n%s", logs)
		}
		// It changed nothing: the stored fingerprint is still A and B's,
		// and both still serve.
		keys, err := keyring.New(miKey)
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := sqlDB.QueryRow(`SELECT value FROM meta WHERE key = 'secret_key_fingerprint'`).Scan(&stored); err != nil || stored != keys.Fingerprint() {
			t.Fatalf("stored fingerprint %q (%v), want the shared key's", stored, err)
		}
		reg := b.register(t, "grace@eight.example", "grace-phone", "tok-grace")
		if p := a.push(t, reg); p.status != http.StatusOK {
			t.Fatalf("push through A after the refused start: %d %s", p.status, p.raw)
		}
	})
}

// miWaitTokensEventually is miWaitTokens with room for a coalescing window.
func miWaitTokensEventually(t *testing.T, f *fake.FCM, token string, n int) {
	t.Helper()
	deadline := time.Now().Add(miCoalesce + 10*time.Second)
	for {
		got := 0
		for _, tok := range f.Tokens() {
			if tok == token {
				got++
			}
		}
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("fake FCM got %d messages for %s, want %d", got, token, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMultiInstanceConcurrentStart starts several p2http processes at the
// same moment on fresh schemas, again and again: the migrations run once,
// under golang-migrate's advisory lock, and never leave the schema dirty.
// In each round one process has another server key: whichever key reaches
// the database first is pinned, every process with that key starts, and
// every process with the other refuses, naming P2_SECRET_KEY.
func TestMultiInstanceConcurrentStart(t *testing.T) {
	const rounds, perRound = 3, 4
	for round := 0; round < rounds; round++ {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			dbURL := dbtest.PostgresSchemaURL(t)
			// The odd one out starts first, in the middle, or last.
			keyOf := func(i int) string {
				if i == (round*(perRound-1)/(rounds-1))%perRound {
					return miOtherKey
				}
				return miKey
			}
			ins := make([]*miInstance, perRound)
			for i := range ins {
				ins[i] = miStart(t, fmt.Sprintf("p2http-%d", i), map[string]string{
					"P2_DATABASE_URL": dbURL, "P2_SECRET_KEY": keyOf(i), "P2_JID": pushJID, "P2_DEV": "1",
				})
			}
			// Each either becomes ready or exits.
			ready := make([]bool, perRound)
			for i, in := range ins {
				ready[i] = in.readyOrExit(t, 30*time.Second)
			}
			d := miOpenSQL(t, dbURL)
			var stored string
			if err := d.QueryRow(`SELECT value FROM meta WHERE key = 'secret_key_fingerprint'`).Scan(&stored); err != nil {
				t.Fatalf("stored fingerprint: %v", err)
			}
			winner := ""
			for _, k := range []string{miKey, miOtherKey} {
				kr, err := keyring.New(k)
				if err != nil {
					t.Fatal(err)
				}
				if kr.Fingerprint() == stored {
					winner = k
				}
			}
			if winner == "" {
				t.Fatalf("the stored fingerprint is neither key's")
			}
			for i, in := range ins {
				switch {
				case keyOf(i) == winner && !ready[i]:
					t.Fatalf("%s has the pinned key but did not start:\n%s", in.name, in.proc.Logs())
				case keyOf(i) != winner && ready[i]:
					t.Fatalf("%s has the other key but started", in.name)
				case keyOf(i) != winner:
					if code := miExit(t, in.proc, 10*time.Second); code == 0 || !strings.Contains(in.proc.Logs(), "P2_SECRET_KEY") {
						t.Fatalf("%s with the other key: exit %d, log:\n%s", in.name, code, in.proc.Logs())
					}
				}
			}
			var version int
			var dirty bool
			if err := d.QueryRow(`SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil || version != int(migrations.Latest()) || dirty {
				t.Fatalf("schema_migrations: version %d dirty %v err %v", version, dirty, err)
			}
			if n := miQueryInt(t, d, `SELECT count(*) FROM schema_migrations`); n != 1 {
				t.Fatalf("%d rows in schema_migrations, want 1", n)
			}
			t.Logf("pinned key: %s; %d of %d started", map[bool]string{true: "the shared one", false: "the other one"}[winner == miKey],
				countTrue(ready), perRound)
		})
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// TestMultiInstanceEjabberd attaches two p2xmpp processes at once to one
// ejabberd 23.01, for the same component domain, each calling its own
// p2http (both on one PostgreSQL). ejabberd keeps both connections (its
// route table holds one route per connection) and hands each stanza to one
// of them at random: phones registered through either are pushed through
// either, and when one p2xmpp stops the other carries everything.
func TestMultiInstanceEjabberd(t *testing.T) {
	dbURL := dbtest.PostgresSchemaURL(t)
	srv := xmppserver.StartEjabberd(t, xmppserver.Options{Domain: "example.org", Component: pushJID, ComponentSecret: compSecret})
	fcm, env := miFCMEnv(t)
	env["P2_DATABASE_URL"] = dbURL
	env["P2_SECRET_KEY"] = miKey
	env["P2_JID"] = pushJID
	env["P2_COALESCE_WINDOW"] = "0"
	a, b := miStart(t, "p2http-A", env), miStart(t, "p2http-B", env)
	a.waitReady(t)
	b.waitReady(t)
	xa := startProc(t, "p2xmpp-A", bins.p2xmpp, map[string]string{
		"P2XMPP_JID": pushJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": srv.ComponentAddr, "P2XMPP_API": a.base, "P2XMPP_LOG_LEVEL": "debug"})
	xb := startProc(t, "p2xmpp-B", bins.p2xmpp, map[string]string{
		"P2XMPP_JID": pushJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": srv.ComponentAddr, "P2XMPP_API": b.base, "P2XMPP_LOG_LEVEL": "debug"})
	xa.waitLog("connected to the XMPP server", 1, 30*time.Second)
	xb.waitLog("connected to the XMPP server", 1, 30*time.Second)
	srv.Register(t, "alice", "alice-pw")
	srv.Register(t, "bob", "bob-pw")
	s := &stack{t: t, srv: srv, fcm: fcm, p2http: a.proc, p2xmpp: xa}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	alice := srv.Dial(ctx, t, "alice", "alice-pw")
	reg := s.registerPush(ctx, alice, "fcm-token-alice", "alice-android-id")
	// Registering again lands on either p2xmpp, hence either p2http: same
	// node and secret every time.
	for i := 0; i < 5; i++ {
		if again := s.registerPush(ctx, alice, "fcm-token-alice", "alice-android-id"); again != reg {
			t.Fatalf("re-registration %d: %+v, want %+v", i, again, reg)
		}
	}
	s.enablePush(ctx, alice, reg)
	alice.Close(t)

	// Both links stay up, and the pushes for one phone spread over both.
	const messages = 16
	for i := 1; i <= messages; i++ {
		s.message(ctx, fmt.Sprintf("message %d", i))
		s.waitFCM(i, 20*time.Second)
	}
	pushesA := strings.Count(a.proc.Logs(), `"route":"/v1/push"`)
	pushesB := strings.Count(b.proc.Logs(), `"route":"/v1/push"`)
	t.Logf("%d pushes: %d through p2xmpp-A/p2http-A, %d through p2xmpp-B/p2http-B", messages, pushesA, pushesB)
	if pushesA+pushesB != messages || pushesA == 0 || pushesB == 0 {
		t.Fatalf("pushes: %d through A, %d through B; want %d spread over both", pushesA, pushesB, messages)
	}
	for _, x := range []*proc{xa, xb} {
		if strings.Contains(x.Logs(), "disconnected") {
			t.Fatalf("%s lost its link while the other was connected:\n%s", x.name, x.Logs())
		}
	}

	// One p2xmpp stops: ejabberd drops its route, the other carries all.
	xa.stop()
	// p2xmpp closed its stream and ejabberd answered before it exited; the
	// route goes when ejabberd's connection process terminates, which it
	// does not log: give it a moment.
	time.Sleep(500 * time.Millisecond)
	for i := 1; i <= 4; i++ {
		s.message(ctx, fmt.Sprintf("after p2xmpp-A stopped %d", i))
		s.waitFCM(messages+i, 20*time.Second)
	}
	if n := strings.Count(b.proc.Logs(), `"route":"/v1/push"`); n != pushesB+4 {
		t.Fatalf("after p2xmpp-A stopped, p2http-B got %d more pushes, want 4", n-pushesB)
	}
}
