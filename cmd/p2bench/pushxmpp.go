package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"time"
)

// pushXMPP is the push (XMPP) scenario: a load component on a private
// Prosody publishes, as Prosody's mod_cloud_notify does, to push.example.org;
// Prosody routes the publish to p2xmpp, which calls p2http, which sends to
// the fake FCM. The ceiling is the same load component against an echo
// component that answers every publish at once. 10,000 registrations of
// the publishing domain in PostgreSQL, coalescing off: every publish answered
// with a result must reach the fake FCM once.
func (b *bench) pushXMPP(ctx context.Context) error {
	const n = 10_000
	pros, err := startProsody(ctx, b.dir, b.loadCPUs)
	if err != nil {
		return err
	}
	defer pros.stop()
	dbName, dsn, err := b.pg.create(ctx, "xmpp")
	if err != nil {
		return err
	}
	defer b.pg.drop(dbName)
	s, err := b.startP2HTTP(ctx, p2httpOptions{label: "xmpp", database: dsn})
	if err != nil {
		return err
	}
	defer s.stop()
	if err := seedPostgres(ctx, dsn, 0, n, loadJID, 0); err != nil {
		return err
	}
	w, err := newPushWorkload(b, n, loadJID, s.base, 64)
	if err != nil {
		return err
	}
	// Every registration pushed once, straight to p2http: the steady state
	// of a server in service (see pushWorkload.warm).
	if _, err := w.warm(ctx, 64); err != nil {
		return err
	}
	conc := b.cfg.xmppConc
	load, err := newLoadComponent(ctx, pros.componentAddr, loadJID, pros.secret, pushJID, conc)
	if err != nil {
		return err
	}
	defer load.close()
	nodes, secrets := make([]string, n), make([]string, n)
	for i := range n {
		nodes[i] = seedNode(i)
		secrets[i] = b.keys.Secret(nodes[i])
	}
	// viaP2XMPP must reach FCM; the echo component sends nothing there.
	viaP2XMPP := func(ctx context.Context, worker int, seq uint64) error {
		i := w.pick(seq)
		if err := load.publish(ctx, worker, seq, nodes[i], secrets[i]); err != nil {
			return err
		}
		w.delivered(i)
		return nil
	}
	viaEcho := func(ctx context.Context, worker int, seq uint64) error {
		i := w.pick(seq)
		if err := load.publish(ctx, worker, seq, nodes[i], secrets[i]); err != nil {
			return err
		}
		w.ok.Add(1)
		return nil
	}

	var xmppRSS float64
	ceil, got := b.sideBySide("push_xmpp", func(round int) stats {
		echo, err := newEchoComponent(ctx, pros.componentAddr, pushJID, pros.secret)
		if err != nil {
			return failedRun(err)
		}
		defer echo.stop()
		return w.measure(ctx, nil, "", 0, conc, viaEcho)
	}, func(round int) stats {
		px, err := b.startP2XMPP(ctx, pros, s, round)
		if err != nil {
			return failedRun(err)
		}
		st := w.measure(ctx, []*sut{s, px}, fmt.Sprintf("push_xmpp-r%d", round), 0, conc, viaP2XMPP)
		xmppRSS = max(xmppRSS, px.peakRSS())
		px.stop()
		return st
	})
	ratio := got.Throughput() / ceil.Throughput()
	label := fmt.Sprintf("%d outstanding, %d×(%v+%v)", conc, b.cfg.rounds, b.cfg.warmup, b.cfg.duration)
	b.rows = append(b.rows,
		row{Scenario: "push_xmpp", Path: "ceiling: load comp. -> Prosody -> echo comp.", Load: label, Stats: ceil},
		row{Scenario: "push_xmpp", Path: "load comp. -> Prosody -> p2xmpp -> p2http -> fake FCM", Load: label, Stats: got,
			RSS: s.peakRSS(), Ratio: ratio})
	b.note("push_xmpp: p2xmpp's peak RSS was %.1f MiB; the CPU µs/op of the XMPP row are p2http's and p2xmpp's together", xmppRSS)
	b.targets = append(b.targets, target{Name: "push_xmpp", Value: ratio, Op: ">=", Limit: 0.7}.check(got.ErrorCount() == 0 && ceil.ErrorCount() == 0))
	return nil
}

// failedRun is the stats of a run that could not start.
func failedRun(err error) stats {
	return stats{Errors: map[string]int{"run failed: " + err.Error(): 1}}
}

// startP2XMPP starts p2xmpp pinned beside p2http and waits until it is
// connected to Prosody.
func (b *bench) startP2XMPP(ctx context.Context, pros *prosody, api *sut, round int) (*sut, error) {
	env := map[string]string{
		"P2XMPP_JID": pushJID, "P2XMPP_SECRET": pros.secret, "P2XMPP_SERVER": pros.componentAddr,
		"P2XMPP_API": api.base, "P2XMPP_LOG_FORMAT": "json",
	}
	if n := b.sutCPUCount(); n > 0 {
		env["GOMAXPROCS"] = strconv.Itoa(n)
	}
	maps.Copy(env, b.cfg.env)
	s := &sut{}
	if b.cfg.profileDir != "" {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env["P2BENCH_PPROF"], s.pprof = addr, addr
	}
	var err error
	s.proc, err = startProc("p2xmpp", b.bins.p2xmpp, nil, env, b.sutCPUs, filepath.Join(b.dir, fmt.Sprintf("p2xmpp-%d.log", round)))
	if err != nil {
		return nil, err
	}
	if err := s.waitLog(ctx, "connected to the XMPP server", 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}
