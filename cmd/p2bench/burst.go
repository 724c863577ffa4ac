package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The burst: a big server waking many phones at once.
const (
	burstSpan   = time.Second
	burstWarm   = 500 // extra registrations the warm-up pushes to
	burstWindow = time.Second
	burstFCM    = 30 * time.Millisecond
	burstRSSMiB = 64 // "memory flat": the same bound as push HTTP
)

// burst is the burst scenario: 50,000 pushes for 5,000 nodes (-burst-pushes
// and -burst-nodes; ten each, in rounds over the nodes, as when ten messages
// reach a group of 5,000) offered in one second through cfg.burstConc
// connections, with coalescing on (1 s, the default) and the fake FCM
// answering after 30 ms. Every push must be answered, none with 500;
// coalescing must show (far fewer FCM messages than pushes, yet every phone
// woken); and p2http's peak RSS during the burst must stay within 64 MiB.
func (b *bench) burst(ctx context.Context) error {
	burstNodes, burstPushes := b.cfg.burstNodes, b.cfg.burstPush
	dbName, dsn, err := b.pg.create(ctx, "burst")
	if err != nil {
		return err
	}
	defer b.pg.drop(dbName)
	s, err := b.startP2HTTP(ctx, p2httpOptions{label: "burst", database: dsn, coalesce: burstWindow})
	if err != nil {
		return err
	}
	defer s.stop()
	if err := seedPostgres(ctx, dsn, 0, burstNodes+burstWarm, httpDomain, 0); err != nil {
		return err
	}
	conc := b.cfg.burstConc
	w, err := newPushWorkload(b, burstNodes+burstWarm, httpDomain, s.base, conc)
	if err != nil {
		return err
	}
	b.fcm.SetLatency(burstFCM)
	defer b.fcm.SetLatency(0)

	// Warm-up on registrations outside the burst: connections, the FCM
	// access token, the database pool. Then let their windows close.
	progress("burst: warm-up")
	schedule(ctx, burstWarm, conc, func(i int) time.Duration { return time.Duration(i) * 2 * time.Millisecond },
		func(int) bool { return false }, 0, func(ctx context.Context, worker int, seq uint64) error {
			return w.viaP2HTTP(ctx, worker, uint64(burstNodes)+seq)
		})
	time.Sleep(burstWindow + 500*time.Millisecond)

	w.reset()
	fcm0, conns0 := b.fcm.Messages(), b.fcm.Conns()
	baseline := s.rss()
	if err := s.resetPeakRSS(); err != nil {
		b.note("burst: cannot reset p2http's peak RSS (%v); the peak includes the warm-up", err)
	}
	var delivered, coalesced atomic.Int64
	push := func(ctx context.Context, worker int, seq uint64) error {
		i := int(seq % uint64(burstNodes))
		status, body, err := w.api.post(ctx, "/v1/push", w.pushBody(i), w.bufs[worker])
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return httpError(status, body)
		}
		if bytes.Contains(body, []byte(`"coalesced":true`)) {
			coalesced.Add(1)
		} else {
			delivered.Add(1)
		}
		return nil
	}
	progress("burst: %d pushes for %d nodes in %v", burstPushes, burstNodes, burstSpan)
	wait := b.profile(s.pprof, "burst-p2http")
	cpu0 := s.cpuTime()
	began := time.Now()
	go func() {
		// Heap and goroutine profiles during the burst, when profiling.
		for _, at := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second} {
			time.Sleep(time.Until(began.Add(at)))
			b.memoryProfiles(s, fmt.Sprintf("burst-p2http-%v", at))
		}
	}()
	st := schedule(ctx, burstPushes, conc, func(i int) time.Duration {
		return time.Duration(i) * burstSpan / time.Duration(burstPushes)
	}, func(int) bool { return true }, burstSpan, push)
	answered := time.Since(began)
	st.Done, st.CPU = int64(st.OK), s.cpuTime()-cpu0
	wait()
	peak := s.peakRSS()
	// The trailing pushes owed by coalescing go out a window later.
	time.Sleep(burstWindow + 2*time.Second)
	after := s.rss()
	messages, conns := b.fcm.Messages()-fcm0, b.fcm.Conns()-conns0
	woken, most := 0, int32(0)
	for i := range burstNodes {
		c := b.fcm.Count(i)
		if c > 0 {
			woken++
		}
		most = max(most, c)
	}

	unanswered := st.Errors["transport error"] + st.Errors["timeout"]
	bad := unanswered + st.Errors["http 500"]
	visible := coalesced.Load() > 0 && messages < int64(burstPushes)
	flat := peak <= burstRSSMiB
	var why []string
	if !visible {
		why = append(why, "no coalescing seen")
	}
	if woken < burstNodes {
		why = append(why, fmt.Sprintf("%d phones never woken", burstNodes-woken))
	}
	if !flat {
		why = append(why, fmt.Sprintf("peak RSS %.1f MiB > %d MiB", peak, burstRSSMiB))
	}
	b.rows = append(b.rows, row{Scenario: "burst", Path: "generator -> p2http -> fake FCM (30 ms), coalescing 1 s",
		Load:  fmt.Sprintf("%d pushes / %d nodes offered in %v, %d conns; answered in %v", burstPushes, burstNodes, burstSpan, conc, answered.Round(10*time.Millisecond)),
		Stats: st, RSS: peak, Throughput: float64(st.OK) / answered.Seconds()})
	b.note("burst: %d answered 200 (%d delivered at once, %d coalesced) in %v; the fake FCM got %d messages for %d pushes "+
		"(at most %d for one phone) over %d new connections, %d of %d phones woken; p2http RSS %.1f MiB before, peak %.1f MiB during, %.1f MiB after",
		st.OK, delivered.Load(), coalesced.Load(), answered.Round(10*time.Millisecond), messages, burstPushes, most, conns, woken, burstNodes,
		baseline, peak, after)
	b.targets = append(b.targets, target{Name: "burst", Value: float64(bad), Op: "=", Limit: 0, Why: strings.Join(why, "; ")}.
		check(visible && flat && woken == burstNodes))
	return nil
}
