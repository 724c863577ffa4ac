package main

// Storage faults, provoked for real: a private PostgreSQL cluster stopped and
// started under traffic, then frozen with SIGSTOP; 32 concurrent writers on
// one SQLite file; and the p2http binary killed with SIGKILL right after
// registering, on SQLite and on PostgreSQL.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/pgcluster"
	"github.com/p2http/p2http/internal/testutil"
)

const (
	// faultClientTimeout is the HTTP client's patience; requestBound is what
	// the tests require of every answer: under the push deadline (10 s)
	// plus a margin. A request that needs longer counts as hung.
	faultClientTimeout = 15 * time.Second
	requestBound       = 12 * time.Second
	faultSecretKey     = "faults-test-server-key-0123456789abcdef"
)

var faultClient = &http.Client{Timeout: faultClientTimeout}

// answer is one HTTP exchange as the tests see it.
type answer struct {
	what       string // "register", "push", …
	status     int
	retryAfter string
	problem    string // the problem type of an error answer
	body       map[string]any
	err        error // transport error (timeout, reset…)
	start, end time.Time
}

func (a answer) latency() time.Duration { return a.end.Sub(a.start) }

func (a answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("%s: %v after %v", a.what, a.err, a.latency().Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: %d %s (Retry-After %q) after %v", a.what, a.status, a.problem, a.retryAfter, a.latency().Round(time.Millisecond))
}

// call sends one request; body nil means GET.
func call(what, method, u string, body any) answer {
	a := answer{what: what, start: time.Now()}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := faultClient.Do(req)
	if err != nil {
		a.err, a.end = err, time.Now()
		return a
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	a.end = time.Now()
	a.status, a.retryAfter, a.err = res.StatusCode, res.Header.Get("Retry-After"), err
	if len(raw) > 0 {
		json.Unmarshal(raw, &a.body)
	}
	if t, ok := a.body["type"].(string); ok {
		a.problem = strings.TrimPrefix(t, "urn:p2http:problem:")
	}
	return a
}

func (a answer) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// phone is a registration the service answered 2xx to.
type phone struct {
	service, account, deviceID, token string
	node, secret                      string
}

func (p phone) registerBody() map[string]string {
	return map[string]string{"service": p.service, "account": p.account, "device_id": p.deviceID, "token": p.token}
}

func (p phone) pushBody() map[string]any {
	return map[string]any{"node": p.node, "secret": p.secret, "important": true}
}

func register(base string, p phone) (phone, answer) {
	a := call("register", http.MethodPost, base+"/v1/register", p.registerBody())
	if a.ok() {
		p.node, _ = a.body["node"].(string)
		p.secret, _ = a.body["secret"].(string)
	}
	return p, a
}

func push(base string, p phone) answer {
	return call("push", http.MethodPost, base+"/v1/push", p.pushBody())
}

func lookup(base, node string) answer {
	return call("lookup", http.MethodGet, base+"/v1/registration?node="+url.QueryEscape(node), nil)
}

func newPhone(service, account, deviceID string) phone {
	token := "tok-" + strings.NewReplacer("@", "-", ".", "-").Replace(account) + "-" + deviceID
	if service == "apns" {
		token = fmt.Sprintf("%x", account+"/"+deviceID)
	}
	return phone{service: service, account: account, deviceID: deviceID, token: token}
}

// checkRegistered fails the test for every phone whose registration is
// gone, or whose node and secret no longer push.
func checkRegistered(t *testing.T, base string, phones []phone) {
	t.Helper()
	missing := 0
	for _, p := range phones {
		if a := lookup(base, p.node); a.status != http.StatusOK || a.body["service"] != p.service {
			missing++
			if missing <= 5 {
				t.Errorf("registration %s (answered 2xx) is not there: %v %v", p.node, a, a.body)
			}
			continue
		}
		// 200, delivered or merged into a push for the same node (coalescing).
		if a := push(base, p); a.status != http.StatusOK || a.body["delivered"] != true && a.body["coalesced"] != true {
			t.Errorf("push to %s: %v %v", p.node, a, a.body)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d registrations answered 2xx are lost", missing, len(phones))
	}
}

// PostgreSQL stopped mid-traffic: while it is down every register and push
// answers 503 with Retry-After, promptly, and /readyz fails; when it comes
// back the service recovers by itself and every registration answered 2xx
// before and during the fault is still there.
func TestPostgresStoppedMidTraffic(t *testing.T) {
	pg := pgcluster.Start(t)
	dbURL := pg.CreateDB(t, "p2http")
	base, logs := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": dbURL, "P2_SECRET_KEY": faultSecretKey})

	var (
		mu         sync.Mutex
		registered []phone // every phone answered 2xx
		answers    []answer
	)
	for i := range 12 {
		svc := []string{"fcm", "apns"}[i%2]
		p, a := register(base, newPhone(svc, fmt.Sprintf("before%d@a%d.example.org", i, i%3), "dev"))
		if !a.ok() {
			t.Fatalf("register before the fault: %v %v", a, a.body)
		}
		registered = append(registered, p)
	}
	targets := append([]phone(nil), registered...)

	// Traffic: a few clients alternately register new phones and push to
	// the phones registered first, until told to stop (bounded in count).
	const clients, maxPerClient = 4, 600
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxPerClient; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var a answer
				if i%2 == 0 {
					var p phone
					p, a = register(base, newPhone([]string{"fcm", "apns"}[i%4/2],
						fmt.Sprintf("c%d-%d@d%d.example.org", c, i, i%5), "phone"))
					if a.ok() {
						mu.Lock()
						registered = append(registered, p)
						mu.Unlock()
					}
				} else {
					a = push(base, targets[(c+i)%len(targets)])
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	stopTraffic := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopTraffic()

	time.Sleep(500 * time.Millisecond)
	tStopping := time.Now()
	pg.Stop(t)
	tDown := time.Now()
	t.Logf("PostgreSQL stopped in %v", tDown.Sub(tStopping).Round(time.Millisecond))

	// Down: /readyz fails, traffic goes on.
	var readyDown []answer
	for time.Since(tDown) < 1500*time.Millisecond {
		readyDown = append(readyDown, call("readyz", http.MethodGet, base+"/readyz", nil))
		time.Sleep(150 * time.Millisecond)
	}
	tStarting := time.Now()
	pg.Start(t)
	tUp := time.Now()
	t.Logf("PostgreSQL started again in %v", tUp.Sub(tStarting).Round(time.Millisecond))

	// Recovery, with no restart: a new phone registers and pushes.
	var recovered time.Duration
	var probes []answer
	for i := 0; ; i++ {
		p, a := register(base, newPhone("fcm", fmt.Sprintf("probe%d@probe.example.org", i), "dev"))
		probes = append(probes, a)
		if a.ok() {
			mu.Lock()
			registered = append(registered, p)
			mu.Unlock()
			b := push(base, p)
			probes = append(probes, b)
			if b.ok() {
				recovered = time.Since(tUp)
				break
			}
		}
		if time.Since(tUp) > 15*time.Second {
			t.Fatalf("the service did not recover within 15 s of PostgreSQL's return; last answers %v\n%s\n%s",
				probes[max(0, len(probes)-4):], logs.String(), pg.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tRecovered := time.Now()
	t.Logf("register and push succeed again %v after PostgreSQL accepted connections", recovered.Round(time.Millisecond))
	time.Sleep(700 * time.Millisecond) // traffic after recovery
	stopTraffic()

	if a := call("readyz", http.MethodGet, base+"/readyz", nil); a.status != http.StatusOK {
		t.Errorf("/readyz after recovery: %v %v", a, a.body)
	}
	for _, a := range readyDown {
		if a.err != nil || a.status != http.StatusServiceUnavailable || a.latency() > requestBound {
			t.Errorf("/readyz while PostgreSQL is down: %v", a)
		}
	}
	if len(readyDown) == 0 {
		t.Error("/readyz was not checked while PostgreSQL was down")
	}

	// Every answer: 2xx, or 503 with Retry-After; never 500, never a hang.
	var (
		down, before, after int
		maxDown, maxAll     time.Duration
		downLatencies       []time.Duration
		statuses            = map[string]int{}
		all                 = append(append([]answer(nil), answers...), probes...)
	)
	for _, a := range all {
		statuses[a.what+" "+strconv.Itoa(a.status)]++
		maxAll = max(maxAll, a.latency())
		switch {
		case a.err != nil:
			t.Errorf("transport error (a hang or a dropped connection): %v", a)
			continue
		case a.latency() > requestBound:
			t.Errorf("answered after %v, over the %v bound: %v", a.latency(), requestBound, a)
		case a.status == http.StatusServiceUnavailable:
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
				t.Errorf("503 without a valid Retry-After: %v", a)
			}
			if a.problem != "unavailable" {
				t.Errorf("503 with problem type %q: %v", a.problem, a)
			}
		case a.status == http.StatusOK || a.status == http.StatusCreated:
		default:
			t.Errorf("neither 2xx nor 503: %v %v", a, a.body)
		}
		// Requests wholly inside the outage must all have failed cleanly.
		if !a.start.Before(tDown) && !a.end.After(tStarting) {
			down++
			maxDown = max(maxDown, a.latency())
			downLatencies = append(downLatencies, a.latency())
			if a.status != http.StatusServiceUnavailable {
				t.Errorf("while PostgreSQL was down: %v", a)
			}
		}
		if a.end.Before(tStopping) {
			before++
		}
		// Requests sent a while after recovery all succeed: no pool of dead
		// connections keeps failing them.
		if a.start.After(tRecovered.Add(200*time.Millisecond)) && !a.ok() {
			t.Errorf("after recovery: %v", a)
		}
		if a.start.After(tRecovered) {
			after++
		}
	}
	sort.Slice(downLatencies, func(i, j int) bool { return downLatencies[i] < downLatencies[j] })
	var p50 time.Duration
	if len(downLatencies) > 0 {
		p50 = downLatencies[len(downLatencies)/2]
	}
	t.Logf("answers: %v", statuses)
	t.Logf("%d requests before the stop, %d wholly while down (median %v, max %v), %d after recovery; max latency overall %v",
		before, down, p50.Round(time.Microsecond), maxDown.Round(time.Microsecond), after, maxAll.Round(time.Millisecond))
	if down < 10 || before < 10 || after < 10 {
		t.Errorf("too little traffic to judge: %d before, %d while down, %d after", before, down, after)
	}

	// No registration answered 2xx is lost, and each still pushes.
	mu.Lock()
	phones := append([]phone(nil), registered...)
	mu.Unlock()
	checkRegistered(t, base, phones)
	t.Logf("%d registrations answered 2xx, all still there", len(phones))
	if strings.Contains(logs.String(), "code=internal") {
		t.Errorf("an internal error was logged:\n%s", logs.String())
	}
}

// PostgreSQL frozen (every server process stopped with SIGSTOP): pooled
// connections stay open and new ones complete their TCP handshake, but
// nothing answers, as with a hung server or a partition that drops packets.
// Every request still answers 503 with Retry-After within its bound instead
// of hanging until the database comes back, and the service recovers when
// it does.
func TestPostgresFrozen(t *testing.T) {
	pg := pgcluster.Start(t)
	dbURL := pg.CreateDB(t, "p2http")
	base, logs := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": dbURL, "P2_SECRET_KEY": faultSecretKey})

	var phones []phone
	for i := range 8 {
		p, a := register(base, newPhone("fcm", fmt.Sprintf("frozen%d@f.example.org", i), "dev"))
		if !a.ok() {
			t.Fatalf("register: %v %v", a, a.body)
		}
		phones = append(phones, p)
	}
	// Fill the pool with open connections: the frozen server keeps them.
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := push(base, p); !a.ok() {
				t.Errorf("push: %v", a)
			}
		}()
	}
	wg.Wait()

	pg.Pause(t)
	tPaused := time.Now()
	var (
		mu      sync.Mutex
		answers []answer
	)
	send := func(f func() answer) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := f()
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		}()
	}
	for i := range 12 {
		send(func() answer {
			_, a := register(base, newPhone("apns", fmt.Sprintf("during%d@f.example.org", i), "dev"))
			return a
		})
		send(func() answer { return push(base, phones[i%len(phones)]) })
		if i%3 == 0 {
			send(func() answer { return lookup(base, phones[i%len(phones)].node) })
			send(func() answer {
				return call("unregister", http.MethodPost, base+"/v1/unregister",
					map[string]string{"service": "fcm", "account": "nobody@f.example.org", "device_id": "x"})
			})
		}
	}
	send(func() answer { return call("readyz", http.MethodGet, base+"/readyz", nil) })
	wg.Wait()
	frozenFor := time.Since(tPaused)
	pg.Resume(t)
	tResumed := time.Now()

	var maxLatency time.Duration
	byWhat := map[string][]time.Duration{}
	for _, a := range answers {
		maxLatency = max(maxLatency, a.latency())
		byWhat[a.what] = append(byWhat[a.what], a.latency().Round(10*time.Millisecond))
		switch {
		case a.err != nil:
			t.Errorf("hung or dropped while PostgreSQL was frozen: %v", a)
		case a.latency() > requestBound:
			t.Errorf("answered after %v, over the %v bound: %v", a.latency(), requestBound, a)
		case a.what == "readyz":
			if a.status != http.StatusServiceUnavailable {
				t.Errorf("/readyz while PostgreSQL was frozen: %v", a)
			}
		case (a.what == "push" || a.what == "lookup") && a.status == http.StatusOK:
			// Served from the registration cache: a frozen database takes
			// no writes, so what the cache holds is still true.
		case a.status == http.StatusServiceUnavailable || a.what == "push" && a.status == http.StatusGatewayTimeout:
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
				t.Errorf("%d without a valid Retry-After: %v", a.status, a)
			}
		default:
			t.Errorf("while PostgreSQL was frozen: %v %v", a, a.body)
		}
	}
	t.Logf("while frozen (%v), latencies: %v", frozenFor.Round(time.Millisecond), byWhat)

	// Back: the service recovers by itself.
	for {
		p, a := register(base, newPhone("fcm", "after@f.example.org", "dev"))
		if a.ok() {
			if b := push(base, p); b.ok() {
				phones = append(phones, p)
				break
			}
		}
		if time.Since(tResumed) > 15*time.Second {
			t.Fatalf("no recovery within 15 s of the thaw: %v\n%s", a, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovered %v after the thaw; max latency while frozen %v",
		time.Since(tResumed).Round(time.Millisecond), maxLatency.Round(time.Millisecond))
	if a := call("readyz", http.MethodGet, base+"/readyz", nil); a.status != http.StatusOK {
		t.Errorf("/readyz after the thaw: %v", a)
	}
	checkRegistered(t, base, phones)
}

// SQLite: 32 concurrent writers on one file, registering, re-registering and
// unregistering distinct and identical devices, never see "database is
// locked" or any other 5xx.
func TestSQLiteConcurrentWriters(t *testing.T) {
	base, logs := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})

	const writers, rounds = 32, 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
		failures []string
		final    = make([]phone, writers)
		total    atomic.Int64
		slowest  time.Duration
	)
	record := func(a answer, allowed ...int) {
		total.Add(1)
		mu.Lock()
		defer mu.Unlock()
		statuses[a.what+" "+strconv.Itoa(a.status)]++
		slowest = max(slowest, a.latency())
		okStatus := false
		for _, s := range allowed {
			okStatus = okStatus || a.status == s
		}
		if a.err != nil || !okStatus || a.latency() > requestBound {
			failures = append(failures, fmt.Sprintf("%v %v", a, a.body))
		}
	}
	begin := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := newPhone([]string{"fcm", "apns"}[w%2], fmt.Sprintf("writer%d@w%d.example.org", w, w%4), "own")
			for r := range rounds {
				// A device of its own: register, push, unregister, register again.
				p, a := register(base, own)
				record(a, 200, 201)
				if a.ok() {
					a = push(base, p)
					a.what = "push"
					record(a, 200)
				}
				a = call("unregister", http.MethodPost, base+"/v1/unregister",
					map[string]string{"service": own.service, "account": own.account, "device_id": own.deviceID})
				record(a, 204)
				p, a = register(base, own)
				a.what = "re-register"
				record(a, 201)
				if a.ok() {
					final[w] = p
				}
				// Devices every writer shares: the same account and device,
				// registered, renewed and removed by all at once.
				shared := newPhone("fcm", "shared@example.org", fmt.Sprintf("shared%d", (w+r)%3))
				shared.token += fmt.Sprintf("-w%d", w)
				_, a = register(base, shared)
				a.what = "register shared"
				record(a, 200, 201)
				if r%3 == 2 {
					a = call("unregister", http.MethodPost, base+"/v1/unregister",
						map[string]string{"service": "fcm", "account": shared.account, "device_id": shared.deviceID})
					a.what = "unregister shared"
					record(a, 204, 404)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	t.Logf("%d requests from %d writers in %v (slowest %v): %v", total.Load(), writers,
		elapsed.Round(time.Millisecond), slowest.Round(time.Millisecond), statuses)
	for i, f := range failures {
		if i == 10 {
			t.Errorf("… and %d more", len(failures)-10)
			break
		}
		t.Errorf("unexpected answer: %s", f)
	}
	if out := logs.String(); strings.Contains(out, "database is locked") || strings.Contains(out, "SQLITE_BUSY") {
		t.Errorf("the log shows a locked database")
	}
	var mine []phone
	for _, p := range final {
		if p.node != "" {
			mine = append(mine, p)
		}
	}
	if len(mine) != writers {
		t.Fatalf("%d of %d writers ended registered", len(mine), writers)
	}
	checkRegistered(t, base, mine)
}

// Registrations are durable once register answered 2xx: p2http is killed
// with SIGKILL right after the last 2xx, started again on the same database,
// and every registration is there and pushes with its node and secret.
func TestRegistrationsSurviveKill9(t *testing.T) {
	bin := buildP2HTTP(t)
	t.Run("sqlite", func(t *testing.T) {
		dbURL := "sqlite:" + filepath.Join(t.TempDir(), "p2.db")
		env := map[string]string{"P2_DATABASE_URL": dbURL} // the key file beside the database
		killAfterRegistering(t, bin, env, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgcluster.Start(t)
		env := map[string]string{"P2_DATABASE_URL": pg.CreateDB(t, "p2http"), "P2_SECRET_KEY": faultSecretKey}
		// PostgreSQL crashes as well (immediate stop: no checkpoint, recovery
		// from the WAL at the next start).
		killAfterRegistering(t, bin, env, func() {
			pg.Kill(t)
			pg.Start(t)
		})
	})
}

func killAfterRegistering(t *testing.T, bin string, env map[string]string, between func()) {
	const n, workers = 60, 8
	proc := startBinary(t, bin, env)

	var (
		mu     sync.Mutex
		phones []phone
		done   = make(chan struct{})
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	var killedAt time.Time
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p, a := register(proc.base, newPhone([]string{"fcm", "apns"}[i%2],
					fmt.Sprintf("kill%d@k%d.example.org", i, i%3), "dev"))
				if !a.ok() {
					t.Errorf("register %d: %v %v", i, a, a.body)
					return
				}
				mu.Lock()
				phones = append(phones, p)
				if len(phones) == n {
					// Right after the last 2xx.
					proc.cmd.Process.Signal(syscall.SIGKILL)
					killedAt = time.Now()
					close(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	default:
		proc.cmd.Process.Kill()
		t.Fatalf("only %d of %d registrations answered 2xx\n%s", len(phones), n, proc.logs.String())
	}
	exited, err := proc.wait(10 * time.Second)
	var exit *exec.ExitError
	if !exited || !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("p2http was not killed by SIGKILL: %v", err)
	}
	t.Logf("SIGKILL sent as the %dth register answered; the process was gone %v later", n, time.Since(killedAt).Round(time.Microsecond))
	if between != nil {
		between()
	}

	again := startBinary(t, bin, env)
	checkRegistered(t, again.base, phones)
	// Registering again finds the same node and secret: the phone's
	// identity survived, not just a row.
	for _, p := range phones[:5] {
		q, a := register(again.base, phone{service: p.service, account: p.account, deviceID: p.deviceID, token: p.token})
		if a.status != http.StatusOK || q.node != p.node || q.secret != p.secret {
			t.Errorf("re-register after the restart: %v, node %s→%s", a, p.node, q.node)
		}
	}
}

// binary is a p2http process started by a test.
type binary struct {
	cmd    *exec.Cmd
	base   string
	logs   *testutil.LogBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // what Wait returned, once exited is closed
}

// wait waits up to d for the process to exit and returns Wait's error.
func (b *binary) wait(d time.Duration) (exited bool, err error) {
	select {
	case <-b.exited:
		return true, b.err
	case <-time.After(d):
		return false, nil
	}
}

// buildP2HTTP builds this command into the test's temporary directory.
func buildP2HTTP(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building p2http needs the go command on $PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "p2http")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs the built p2http in dev mode with env and waits until it
// listens. It is killed at cleanup if still running.
func startBinary(t *testing.T, bin string, env map[string]string) *binary {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"P2_DEV=1", "P2_LISTEN=127.0.0.1:0", "P2_LOG_FORMAT=json", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &binary{cmd: cmd, logs: &testutil.LogBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			b.logs.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "p2http listening" && rec.Addr != "" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		b.err = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-b.exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if exited, _ := b.wait(20 * time.Second); !exited {
			cmd.Process.Kill()
			b.wait(5 * time.Second)
		}
	})
	select {
	case addr := <-addrc:
		b.base = "http://" + addr
		return b
	case <-b.exited:
		t.Fatalf("p2http exited at start-up: %v\n%s", b.err, b.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("p2http did not listen within 30 s\n%s", b.logs.String())
	}
	return nil
}
