package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/benchfake"
)

// The edge scenario (issue 18): what the connections a client may open
// without any credential cost p2http, and what its caps leave of it.
const (
	// edgeAddrs client addresses, 127.0.0.2 to 127.0.0.40, carry the
	// attack; 127.0.0.1 is the genuine client's, and 127.0.0.41 and up
	// are the ones that knock over the caps.
	edgeAddrs = 39
	// edgeKindConns connections of one kind measure its cost.
	edgeKindConns = 1000
	// edgeRefusals over-cap connections measure the cost of refusing one.
	edgeRefusals = 5000
	// edgePushes genuine pushes are sent while the attack holds nearly
	// every place.
	edgePushes = 20
	// edgeFree places are left to the genuine client during them.
	edgeFree = 16
	// edgeRSSMiB bounds p2http's RSS with every place held.
	edgeRSSMiB = 160
	// edgeSettle is the pause before RSS is read: p2http's goroutines have
	// taken the connections' requests by then.
	edgeSettle = time.Second
)

// edgeKind is one way of holding a connection. open sends what the kind
// sends and tells whether p2http kept the connection.
type edgeKind struct {
	name  string
	about string
	open  func(c net.Conn) bool
}

var edgeKinds = []edgeKind{
	{"slow-header", "a request head of 7 KiB, unfinished (held up to ReadHeaderTimeout, 5 s)", openSlowHeader},
	{"slow-body", "a whole head, 1 KiB of a 60,000-byte body (held up to ReadTimeout, 10 s)", openSlowBody},
	{"idle", "one GET /healthz answered, then kept alive (held up to IdleTimeout, 120 s)", openIdle},
}

// openSlowHeader sends a request head just under the cap (8 KiB with
// net/http's slack), without the blank line that ends it.
func openSlowHeader(c net.Conn) bool {
	var b strings.Builder
	b.WriteString("POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
	for i := 0; b.Len() < 7<<10; i++ {
		fmt.Fprintf(&b, "X-Pad-%02d: %s\r\n", i, strings.Repeat("p", 90))
	}
	_, err := io.WriteString(c, b.String())
	return err == nil
}

// openSlowBody sends a whole head and the first KiB of the body.
func openSlowBody(c net.Conn) bool {
	_, err := io.WriteString(c, "POST /v1/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
		"Content-Length: 60000\r\n\r\n{\"service\":\"fcm\",\"account\":\""+strings.Repeat("a", 1000))
	return err == nil
}

// openIdle sends one request and reads its answer: the connection is then
// idle, kept alive by the server.
func openIdle(c net.Conn) bool {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// edgeAddr is the i-th attacking address, 127.0.0.2 to 127.0.0.40.
func edgeAddr(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%edgeAddrs) }

// edgeDial connects to addr from the loopback address from.
func edgeDial(from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// edgeConns are the connections an attack holds.
type edgeConns []net.Conn

func (cs edgeConns) close() {
	for _, c := range cs {
		c.Close()
	}
}

// openKind opens n connections of kind k from the attacking addresses,
// starting at address index first; it returns those p2http kept.
func openKind(addr string, k edgeKind, n, first int) (edgeConns, error) {
	var out edgeConns
	for i := range n {
		c, err := edgeDial(edgeAddr(first+i), addr)
		if err != nil {
			out.close()
			return nil, fmt.Errorf("%s connection %d: %w", k.name, i+1, err)
		}
		if !k.open(c) {
			c.Close()
			out.close()
			return nil, fmt.Errorf("%s connection %d refused under the caps", k.name, i+1)
		}
		out = append(out, c)
	}
	return out, nil
}

// knock opens n connections from from and reports how many p2http kept
// (with an answer to a request) rather than reset.
func knock(addr, from string, n int) (kept int, held edgeConns) {
	for range n {
		c, err := edgeDial(from, addr)
		if err != nil {
			continue // reset before the dial returned
		}
		if openIdle(c) {
			kept++
			held = append(held, c)
		} else {
			c.Close()
		}
	}
	return kept, held
}

// edgeP2HTTP starts a p2http with the default caps on a SQLite file and
// registers one phone, whose push body it returns.
func (b *bench) edgeP2HTTP(ctx context.Context, label string) (*sut, []byte, error) {
	s, err := b.startP2HTTP(ctx, p2httpOptions{label: label, database: "sqlite:" + filepath.Join(b.dir, label+".db")})
	if err != nil {
		return nil, nil, err
	}
	api := newAPIClient(s.base, 1)
	buf := make([]byte, 4096)
	status, body, err := api.post(ctx, "/v1/register",
		fmt.Appendf(nil, `{"service":"fcm","account":"edge@%s","device_id":"edge","token":%q}`, httpDomain, benchfake.Token(1)), buf)
	if err == nil && status != http.StatusCreated && status != http.StatusOK {
		err = httpError(status, body)
	}
	if err != nil {
		s.stop()
		return nil, nil, fmt.Errorf("register: %w", err)
	}
	var reg struct{ Node, Secret string }
	if err := json.Unmarshal(body, &reg); err != nil {
		s.stop()
		return nil, nil, err
	}
	push := fmt.Appendf(nil, `{"node":%q,"secret":%q,"important":true}`, reg.Node, reg.Secret)
	for range 10 { // warm: the FCM access token, the connection to FCM
		if status, body, err := api.post(ctx, "/v1/push", push, buf); err != nil || status != http.StatusOK {
			s.stop()
			return nil, nil, fmt.Errorf("warm-up push: %d %s %v", status, body, err)
		}
	}
	api.hc.CloseIdleConnections()
	time.Sleep(edgeSettle)
	return s, push, nil
}

// edge is the edge scenario. For each kind of connection, a fresh p2http
// gets 1,000 of them from 39 addresses; the growth of its RSS divided by
// 1,000 is the kind's cost. Then a fresh p2http gets as many as its total
// cap (P2_MAX_CONNS, 4096) allows, a third of each kind over the same 39
// addresses: its RSS then is the bound the caps put on memory. While all
// but 16 places are held, 20 genuine pushes from 127.0.0.1 measure what
// is left for a genuine client; at the cap, connections over it are
// counted (none may be kept) and so is p2http's CPU time per refusal. The
// idle run also shows the per-address cap: one more address opens 1,100.
func (b *bench) edge(ctx context.Context) error {
	var costs []string
	for _, k := range edgeKinds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		progress("edge: %d %s connections", edgeKindConns, k.name)
		s, _, err := b.edgeP2HTTP(ctx, "edge-"+k.name)
		if err != nil {
			return err
		}
		addr := strings.TrimPrefix(s.base, "http://")
		base := s.rss()
		held, err := openKind(addr, k, edgeKindConns, 0)
		if err != nil {
			s.stop()
			return err
		}
		time.Sleep(edgeSettle)
		rss := s.rss()
		perConn := (rss - base) * 1024 / edgeKindConns
		costs = append(costs, fmt.Sprintf("%s %.1f KiB", k.name, perConn))
		b.rows = append(b.rows, row{Scenario: "edge", Path: "p2http, " + k.name + ": " + k.about,
			Load: fmt.Sprintf("%d conns from %d addresses; RSS %.1f -> %.1f MiB, %.1f KiB per conn", edgeKindConns, edgeAddrs, base, rss, perConn),
			RSS:  s.peakRSS()})
		if k.name == "idle" {
			// One address alone: the per-address cap.
			kept, more := knock(addr, "127.0.0.41", httpserver.DefaultMaxConnsPerAddr+76)
			b.note("edge: one address opening %d idle connections kept %d (P2_MAX_CONNS_PER_ADDR %d)",
				httpserver.DefaultMaxConnsPerAddr+76, kept, httpserver.DefaultMaxConnsPerAddr)
			b.targets = append(b.targets, target{Name: "edge_per_addr_kept", Value: float64(kept), Op: "=",
				Limit: float64(httpserver.DefaultMaxConnsPerAddr)}.check(true))
			more.close()
		}
		held.close()
		s.stop()
	}
	b.note("edge: p2http's RSS per held connection: %s", strings.Join(costs, ", "))
	return b.edgeAtCaps(ctx)
}

// edgeAtCaps fills every place of a fresh p2http, a third of each kind.
// The slow heads last 5 s (ReadHeaderTimeout): they are opened last, and
// what must happen while every place is held (the RSS, the knocks over the
// cap) happens within that time.
func (b *bench) edgeAtCaps(ctx context.Context) error {
	progress("edge: %d connections, the total cap", httpserver.DefaultMaxConns)
	s, push, err := b.edgeP2HTTP(ctx, "edge-caps")
	if err != nil {
		return err
	}
	defer s.stop()
	addr := strings.TrimPrefix(s.base, "http://")
	base := s.rss()
	total := httpserver.DefaultMaxConns
	var held edgeConns
	defer func() { held.close() }()
	third := (total - edgeFree) / 3
	began := time.Now()
	var slowHeads time.Time
	for i, k := range []edgeKind{edgeKinds[2], edgeKinds[1], edgeKinds[0]} {
		n := third
		if i == 2 {
			n = total - edgeFree - 2*third
			slowHeads = time.Now()
		}
		cs, err := openKind(addr, k, n, i*third)
		if err != nil {
			return err
		}
		held = append(held, cs...)
	}
	opened := time.Since(began)

	// Genuine pushes from 127.0.0.1, one connection each.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	api := &apiClient{base: s.base, hc: hc}
	buf := make([]byte, 4096)
	st := stats{Errors: map[string]int{}}
	pushStart := time.Now()
	for range edgePushes {
		t0 := time.Now()
		status, body, err := api.post(ctx, "/v1/push", push, buf)
		switch {
		case err != nil:
			st.Errors[errKind(err)]++
		case status != http.StatusOK:
			st.Errors[httpError(status, body).Error()]++
		default:
			st.OK++
			st.Lat = append(st.Lat, time.Since(t0))
		}
	}
	st.Window = time.Since(pushStart)
	slices.Sort(st.Lat)

	// The rest of the places, then knocks over the total from new
	// addresses while the slow heads still hold theirs: none may be kept.
	// The pushes' connections close just after their answers; the
	// readiness checks may keep one: fill until p2http refuses.
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 2*edgeFree; i++ {
		c, err := edgeDial(edgeAddr(i), addr)
		if err != nil || !openIdle(c) {
			if c != nil {
				c.Close()
			}
			break
		}
		held = append(held, c)
	}
	time.Sleep(edgeSettle / 2)
	rss, peak := s.rss(), s.peakRSS()
	// What p2http burns holding the places, without knocks (timers, the
	// collector): subtracted from the knocks' CPU time.
	idle0, idleT0 := s.cpuTime(), time.Now()
	time.Sleep(edgeSettle / 2)
	idleRate := float64(s.cpuTime()-idle0) / float64(time.Since(idleT0))
	overKept, knocks := 0, 0
	knockUntil := slowHeads.Add(httpserver.ReadHeaderTimeout - 500*time.Millisecond)
	cpu0, t0 := s.cpuTime(), time.Now()
	for ; knocks < edgeRefusals && time.Now().Before(knockUntil); knocks++ {
		kept, more := knock(addr, fmt.Sprintf("127.0.0.%d", 41+knocks%200), 1)
		overKept += kept
		more.close()
	}
	refuseCPU, refuseWall := s.cpuTime()-cpu0, time.Since(t0)
	if knocks < edgeRefusals/2 {
		b.note("edge: only %d knocks over the cap before the slow heads' deadline (the machine is slow or busy)", knocks)
	}

	b.rows = append(b.rows, row{Scenario: "edge", Path: fmt.Sprintf("genuine pushes from 127.0.0.1 with all but %d places held", edgeFree),
		Load:  fmt.Sprintf("%d pushes, one connection each", edgePushes),
		Stats: st, RSS: peak})
	b.rows = append(b.rows, row{Scenario: "edge", Path: "p2http at the total cap, a third of each kind",
		Load: fmt.Sprintf("%d conns from %d addresses (opened in %v); RSS %.1f -> %.1f MiB",
			len(held), edgeAddrs, opened.Round(time.Millisecond), base, rss),
		RSS: peak})
	perRefusal := 0.0
	if knocks > 0 {
		extra := float64(refuseCPU) - idleRate*float64(refuseWall)
		perRefusal = max(extra, 0) / float64(knocks) / float64(time.Microsecond)
	}
	b.note("edge: at the cap (%d connections, %d of them the attack's) p2http's RSS was %.1f MiB (%.1f before, peak %.1f); %d connections over the cap: %d kept, "+
		"p2http CPU %.1f µs per refusal (beyond the %.0f %% of a core it used holding the places), %.0f refusals per second of wall time (one knocking client); genuine pushes meanwhile: %d of %d answered 200, p50 %s ms, max %s ms",
		total, len(held), rss, base, peak, knocks, overKept, perRefusal, 100*idleRate, float64(knocks)/refuseWall.Seconds(),
		st.OK, edgePushes, ms(st.Quantile(0.5)), ms(st.Quantile(1)))
	b.targets = append(b.targets,
		target{Name: "edge_rss_mib", Value: peak, Op: "<=", Limit: edgeRSSMiB}.check(true),
		target{Name: "edge_over_cap_kept", Value: float64(overKept), Op: "=", Limit: 0}.check(knocks > 0),
		target{Name: "edge_push_ok", Value: float64(st.OK), Op: "=", Limit: edgePushes}.check(true))
	return nil
}

// errKind names a transport error for the table.
func errKind(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "transport error"
}
