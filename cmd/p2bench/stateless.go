package main

import (
	"context"
	"fmt"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/benchfake"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/sealed"
)

// pushStateless is the stateless push scenario: the push (HTTP) scenario at
// fake latency 0 ms with p2http in the stateless mode, where each push opens
// its node instead of looking it up. Sealing is deterministic, so the
// generator computes the nodes a stateless p2http with the benchmark's key
// hands out for the seeded devices and tokens, and the fake FCM receives
// exactly the requests of the stored scenario. Two comparisons: stateless
// against stored (PostgreSQL, 10,000 registrations, cache warm) side by
// side, and stateless against the ceiling. No target: the difference is
// recorded in docs/performance.md.
func (b *bench) pushStateless(ctx context.Context) error {
	const n = 10_000
	conc := b.cfg.conc
	nodes, err := sealedNodes(b.keys, n, httpDomain)
	if err != nil {
		return err
	}
	dbName, dsn, err := b.pg.create(ctx, "stateless")
	if err != nil {
		return err
	}
	defer b.pg.drop(dbName)
	stored, err := b.startP2HTTP(ctx, p2httpOptions{label: "stateless-stored", database: dsn})
	if err != nil {
		return err
	}
	defer stored.stop()
	if err := seedPostgres(ctx, dsn, 0, n, httpDomain, 0); err != nil {
		return err
	}
	sl, err := b.startP2HTTP(ctx, p2httpOptions{label: "stateless", stateless: true})
	if err != nil {
		return err
	}
	defer sl.stop()
	ws, err := newPushWorkload(b, n, httpDomain, stored.base, conc)
	if err != nil {
		return err
	}
	wl, err := newPushWorkloadOf(b, n, httpDomain, sl.base, conc, func(i int) string { return nodes[i] })
	if err != nil {
		return err
	}
	b.fcm.SetLatency(0)
	for _, w := range []*pushWorkload{ws, wl} {
		if _, err := w.warm(ctx, conc); err != nil {
			return err
		}
	}

	const name = "push_stateless"
	st, got := b.sideBySide(name+" (stored vs stateless)", func(r int) stats {
		return ws.measure(ctx, []*sut{stored}, fmt.Sprintf("%s-stored-r%d", name, r), 0, conc, ws.viaP2HTTP)
	}, func(r int) stats {
		return wl.measure(ctx, []*sut{sl}, fmt.Sprintf("%s-r%d", name, r), 0, conc, wl.viaP2HTTP)
	})
	ceil, got2 := b.sideBySide(name+" (ceiling vs stateless)", func(r int) stats {
		return wl.measure(ctx, nil, "", 0, conc, wl.direct)
	}, func(r int) stats {
		return wl.measure(ctx, []*sut{sl}, fmt.Sprintf("%s-c-r%d", name, r), 0, conc, wl.viaP2HTTP)
	})
	b.rows = append(b.rows,
		row{Scenario: name, Path: "generator -> p2http stored (PostgreSQL) -> fake FCM", Load: loadLabel(b, conc, 0), Stats: st, RSS: stored.peakRSS()},
		row{Scenario: name, Path: "generator -> p2http stateless -> fake FCM (side by side with stored)", Load: loadLabel(b, conc, 0), Stats: got, RSS: sl.peakRSS()},
		row{Scenario: name, Path: "ceiling: generator -> fake FCM", Load: loadLabel(b, conc, 0), Stats: ceil},
		row{Scenario: name, Path: "generator -> p2http stateless -> fake FCM", Load: loadLabel(b, conc, 0), Stats: got2, RSS: sl.peakRSS(),
			Ratio: got2.Throughput() / ceil.Throughput()})
	b.note("push_stateless: stateless/stored throughput %.2f (%.0f vs %.0f pushes/s), p99 %v vs %v; node length %d characters",
		got.Throughput()/st.Throughput(), got.Throughput(), st.Throughput(),
		got.Quantile(0.99).Round(10*time.Microsecond), st.Quantile(0.99).Round(10*time.Microsecond), len(nodes[0]))
	if e := got.ErrorCount() + st.ErrorCount() + got2.ErrorCount() + ceil.ErrorCount(); e > 0 {
		return fmt.Errorf("push_stateless: %d errors", e)
	}
	return nil
}

// sealedNodes returns the nodes a stateless p2http under keys seals for the
// seeded registrations 0 to n-1 (device seedDevice(i), token
// benchfake.Token(i), service FCM, the default app, domain).
func sealedNodes(keys *keyring.Keyring, n int, domain string) ([]string, error) {
	st, err := sealed.New([]*keyring.Keyring{keys}, nil)
	if err != nil {
		return nil, err
	}
	nodes := make([]string, n)
	for i := range nodes {
		reg, _, err := st.Register(context.Background(), p2http.Registration{App: p2http.DefaultApp, Service: p2http.FCM,
			Device: seedDevice(i), Domain: domain, Token: benchfake.Token(i), Node: p2http.NewNode()})
		if err != nil {
			return nil, fmt.Errorf("sealing registration %d: %w", i, err)
		}
		nodes[i] = reg.Node
	}
	return nodes, nil
}
