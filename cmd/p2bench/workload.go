package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/benchfake"
)

// pushWorkload pushes to the seeded registrations 0 to n-1, through p2http
// or straight to the fake FCM, and checks that every push answered with
// success reached FCM exactly once.
type pushWorkload struct {
	b      *bench
	n      int
	domain string
	random bool     // pick registrations at random instead of in turn
	bodies [][]byte // POST /v1/push bodies, when precomputed
	fcmReq [][]byte // the FCM request p2http sends for the same push, when precomputed
	pushed []atomic.Int32
	ok     atomic.Int64 // successful operations of the current run
	api    *apiClient
	fcmHC  *http.Client
	bufs   [][]byte // one answer buffer per worker
	// nodeOf is the node of registration i; nil means seedNode (the
	// registrations seeded into a database).
	nodeOf func(i int) string
}

// newPushWorkload prepares pushes to n registrations of domain through the
// p2http at base, with up to conns connections. Bodies are precomputed for
// up to 100,000 registrations, else made per request.
func newPushWorkload(b *bench, n int, domain, base string, conns int) (*pushWorkload, error) {
	return newPushWorkloadOf(b, n, domain, base, conns, nil)
}

// newPushWorkloadOf is newPushWorkload for registrations whose node is
// nodeOf(i) (nil: seedNode).
func newPushWorkloadOf(b *bench, n int, domain, base string, conns int, nodeOf func(int) string) (*pushWorkload, error) {
	w := &pushWorkload{b: b, n: n, domain: domain, pushed: make([]atomic.Int32, n), api: newAPIClient(base, conns),
		fcmHC: b.fcm.Client(), nodeOf: nodeOf}
	if n <= 100_000 {
		bodies, reqs := make([][]byte, n), make([][]byte, n)
		for i := range n {
			bodies[i], reqs[i] = w.pushBody(i), fcmRequest(i)
		}
		w.bodies, w.fcmReq = bodies, reqs
	}
	w.bufs = make([][]byte, max(conns, 1024))
	for i := range w.bufs {
		w.bufs[i] = make([]byte, 512)
	}
	return w, nil
}

// pushBody is the POST /v1/push body for seeded registration i, as p2xmpp
// sends it for a publish with a message body.
func (w *pushWorkload) pushBody(i int) []byte {
	if w.bodies != nil {
		return w.bodies[i]
	}
	node := seedNode(i)
	if w.nodeOf != nil {
		node = w.nodeOf(i)
	}
	body, err := json.Marshal(map[string]any{"node": node, "secret": w.b.keys.Secret(node), "domain": w.domain, "important": true})
	if err != nil {
		panic(err) // strings and a bool always marshal
	}
	return body
}

// fcmRequest is the body p2http's FCM sender posts for the push to seeded
// registration i.
func fcmRequest(i int) []byte {
	return fcm.RequestBody(p2http.Wakeup{Token: benchfake.Token(i), Device: seedDevice(i), Important: true})
}

// pick chooses the registration of request seq.
func (w *pushWorkload) pick(seq uint64) int {
	if w.random {
		return rand.IntN(w.n)
	}
	return int(seq % uint64(w.n))
}

// viaP2HTTP pushes through p2http; a push must be delivered (not
// coalesced).
func (w *pushWorkload) viaP2HTTP(ctx context.Context, worker int, seq uint64) error {
	i := w.pick(seq)
	status, body, err := w.api.post(ctx, "/v1/push", w.pushBody(i), w.bufs[worker])
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return httpError(status, body)
	}
	if !bytes.Contains(body, []byte(`"delivered":true`)) {
		return errors.New("not delivered: " + string(body))
	}
	w.delivered(i)
	return nil
}

// delivered counts a successful push to registration i.
func (w *pushWorkload) delivered(i int) {
	w.pushed[i].Add(1)
	w.ok.Add(1)
}

// direct sends the FCM request of the same push straight to the fake FCM,
// with the headers p2http's FCM sender sends: the ceiling.
func (w *pushWorkload) direct(ctx context.Context, worker int, seq uint64) error {
	i := w.pick(seq)
	body := fcmRequest(i)
	if w.fcmReq != nil {
		body = w.fcmReq[i]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.b.fcm.SendURL(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.b.fcm.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Goog-Api-Format-Version", "2")
	status, answer, err := do(w.fcmHC, req, w.bufs[worker])
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return httpError(status, answer)
	}
	w.delivered(i)
	return nil
}

// warm pushes to every registration once through p2http with conc
// clients, as on a server in service, where pushes have gone through
// before: connections, the FCM access token and any cache p2http keeps are
// then in their steady state before the first measured run. It returns how
// long that took.
func (w *pushWorkload) warm(ctx context.Context, conc int) (time.Duration, error) {
	began := time.Now()
	var next atomic.Int64
	errs := make(chan error, conc)
	for worker := range conc {
		go func() {
			var first error
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(w.n) {
					break
				}
				if err := w.viaP2HTTP(ctx, worker, uint64(i)); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	var first error
	for range conc {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return 0, fmt.Errorf("warming p2http up: %w", first)
	}
	return time.Since(began), ctx.Err()
}

// reset prepares the counts for a run.
func (w *pushWorkload) reset() {
	for i := range w.pushed {
		w.pushed[i].Store(0)
	}
	w.ok.Store(0)
	w.b.fcm.ResetCounts()
}

// verify compares, registration by registration, the pushes answered with
// success with the messages the fake FCM received, and adds the differences
// to s's errors.
func (w *pushWorkload) verify(s *stats, rejected0, unknown0 int64) {
	bad := 0
	for i := range w.n {
		if w.b.fcm.Count(i) != w.pushed[i].Load() {
			bad++
		}
	}
	if bad > 0 {
		s.Errors["fcm count mismatch"] += bad
	}
	if d := w.b.fcm.Rejected() - rejected0; d > 0 {
		s.Errors["rejected by fake FCM"] += int(d)
	}
	if d := w.b.fcm.Unknown() - unknown0; d > 0 {
		s.Errors["unknown token at fake FCM"] += int(d)
	}
}

// measure runs one load run of do (closed loop at conc, or open loop at
// rate when it is not 0) and checks the FCM counts afterwards. The CPU time
// of sut is counted, and profiled under profileName when profiling.
func (w *pushWorkload) measure(ctx context.Context, sut []*sut, profileName string, rate float64, conc int, do op) stats {
	w.reset()
	rej, unk := w.b.fcm.Rejected(), w.b.fcm.Unknown()
	cpu0 := cpuTimes(sut)
	var waits []func()
	for _, p := range sut {
		waits = append(waits, w.b.profile(p.pprof, profileName+"-"+p.name))
	}
	var s stats
	if rate > 0 {
		s = openLoop(ctx, rate, conc, w.b.cfg.warmup, w.b.cfg.duration, do)
	} else {
		s = closedLoop(ctx, conc, w.b.cfg.warmup, w.b.cfg.duration, do)
	}
	for _, wait := range waits {
		wait()
	}
	w.verify(&s, rej, unk)
	s.Done = w.ok.Load()
	s.CPU = cpuTimes(sut) - cpu0
	return s
}

// cpuTimes sums the CPU time of processes.
func cpuTimes(ps []*sut) time.Duration {
	var t time.Duration
	for _, p := range ps {
		t += p.cpuTime()
	}
	return t
}
