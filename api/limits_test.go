package api_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/ratelimit"
)

// clientFrom returns a client whose connections leave from ip (an address
// of 127.0.0.0/8), holding every exchange to openapi.yaml as e.Client does.
func clientFrom(t *testing.T, e *env, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: newValidator(t, e.URL, tr)}
}

// garbage is one kind of credential-free push and the statuses it got.
type garbage struct {
	name   string
	client *http.Client
	header []string
	body   map[string]any
	mu     sync.Mutex
	seen   map[int]int
}

func (g *garbage) record(status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen[status]++
}

func (g *garbage) count(status int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[status]
}

// post sends one push without failing the test, for goroutines other than
// the test's own.
func (g *garbage) post(url string) (int, error) {
	b, _ := json.Marshal(g.body)
	req, err := http.NewRequest("POST", url+"/v1/push", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(g.header); i += 2 {
		req.Header.Set(g.header[i], g.header[i+1])
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// A flood of pushes without valid credentials that claim example.org, from
// another address and from an API token at the genuine server's own
// address, cannot starve example.org: the per-domain budget is charged only
// for pushes whose node and secret hold, to their registration's domain,
// and failures spend a budget of their own per caller (API token, else
// address) and claimed domain. The genuine pushes, with and without
// `domain`, all get 200 and reach FCM, and they spend example.org's budget
// alike. On main the garbage spent example.org's budget and the genuine
// pushes got 429.
func TestGarbageCannotStarveADomain(t *testing.T) {
	const (
		domainBurst = 20 // P2_LIMIT_PUSH_DOMAIN's burst; the refill is negligible
		failBurst   = 10 // P2_LIMIT_PUSH_FAILED's burst
		workers     = 4  // per kind of garbage
	)
	e := newEnv(t, dbtest.SQLite(t), options{
		pushLimit:  ratelimit.Rate{PerSecond: 0.001, Burst: domainBurst},
		failLimit:  ratelimit.Rate{PerSecond: 0.001, Burst: failBurst},
		tokens:     []string{"genuine-server-hook-token-0", "attacker-held-token-0123"},
		tokenLimit: ratelimit.Rate{PerSecond: 1e6, Burst: 1e6},
	})
	r := e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": "alice@example.org",
		"device_id": "alice-phone", "token": "alice-fcm-token"}, "Authorization", "Bearer genuine-server-hook-token-0")
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	node, secret := r.Str("node"), r.Str("secret")

	evil := clientFrom(t, e, "127.0.0.2")
	kinds := []*garbage{
		{name: "unknown nodes claiming example.org from 127.0.0.2", client: evil,
			body: map[string]any{"node": "nope", "secret": "x", "domain": "example.org"}},
		{name: "a real node with a wrong secret claiming example.org from 127.0.0.2", client: evil,
			body: map[string]any{"node": node, "secret": "wrong-secret", "domain": "example.org"}},
		{name: "a real node with a wrong secret and no domain from 127.0.0.2", client: evil,
			body: map[string]any{"node": node, "secret": "wrong-secret"}},
		{name: "a real node claiming another domain from 127.0.0.2", client: evil,
			body: map[string]any{"node": node, "secret": "wrong-secret", "domain": "evil.example"}},
		// The genuine server's own address, but an API token: charged to
		// the token, not to the address.
		{name: "unknown nodes claiming example.org with an API token from 127.0.0.1", client: e.Client,
			header: []string{"Authorization", "Bearer attacker-held-token-0123"},
			body:   map[string]any{"node": "nope", "secret": "x", "domain": "example.org"}},
	}
	// The first two kinds are one caller claiming one domain: one budget.
	pairs := [][]*garbage{{kinds[0], kinds[1]}, {kinds[2]}, {kinds[3]}, {kinds[4]}}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent atomic.Int64
	for _, g := range kinds {
		g.seen = map[int]int{}
		for range workers {
			wg.Go(func() {
				for !stop.Load() {
					status, err := g.post(e.URL)
					if err != nil {
						t.Errorf("%s: %v", g.name, err)
						return
					}
					g.record(status)
					sent.Add(1)
				}
			})
		}
	}
	// The flood runs until every pair has spent its budget, and goes on
	// while the genuine server pushes.
	deadline := time.Now().Add(30 * time.Second)
	for spent := false; !spent; {
		spent = true
		for _, pair := range pairs {
			n := 0
			for _, g := range pair {
				n += g.count(http.StatusTooManyRequests)
			}
			spent = spent && n > 0
		}
		if !spent && time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("the garbage was never refused with 429 (%d sent)", sent.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The genuine server: alice's node and secret, from 127.0.0.1 without a
	// token (as p2's Prosody hook calls), with domain and without.
	genuine := map[string]any{"node": node, "secret": secret, "domain": "example.org", "important": true}
	bare := map[string]any{"node": node, "secret": secret, "important": true}
	for i := range domainBurst {
		body := genuine
		if i%4 == 3 {
			body = bare
		}
		if p := e.do("POST", "/v1/push", body); p.Status != 200 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("genuine push %d (domain given: %v) during the flood: %d %s", i, body["domain"] != nil, p.Status, p.Raw)
		}
	}
	stop.Store(true)
	wg.Wait()

	if got := e.FCM.Tokens(); len(got) != domainBurst {
		t.Fatalf("FCM got %d messages, want %d (one per genuine push)", len(got), domainBurst)
	} else {
		for _, tok := range got {
			if tok != "alice-fcm-token" {
				t.Fatalf("FCM message to %q", tok)
			}
		}
	}
	// Each pair's failures were answered as failures up to its budget
	// (plus the pushes of the pair's workers that passed together), then 429.
	for _, pair := range pairs {
		failed, limited, name := 0, 0, pair[0].name
		for _, g := range pair {
			failed += g.count(http.StatusNotFound) + g.count(http.StatusForbidden)
			limited += g.count(http.StatusTooManyRequests)
			for status := range g.seen {
				if status != 404 && status != 403 && status != 429 {
					t.Errorf("%s: answered %d (%d times)", g.name, status, g.seen[status])
				}
			}
		}
		if failed < failBurst || failed > failBurst+workers*len(pair) || limited == 0 {
			t.Errorf("%s: %d answered as failures and %d as 429, want %d to %d, then 429",
				name, failed, limited, failBurst, failBurst+workers*len(pair))
		}
	}
	// The budget is the registration's domain's, with or without `domain`:
	// the genuine pushes spent all of it, and one more is refused either way.
	for _, body := range []map[string]any{bare, genuine} {
		p := e.do("POST", "/v1/push", body)
		expectProblem(t, p, 429, "rate-limited")
	}
	if n := len(e.FCM.Tokens()); n != domainBurst {
		t.Fatalf("FCM got %d messages after the domain's budget was spent, want %d", n, domainBurst)
	}
	e.assertLogsClean(secret, "alice-fcm-token", "wrong-secret", "attacker-held-token-0123", "genuine-server-hook-token-0")
}
