package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
)

// scale is the scale scenario: push latency with cfg.scaleN (1,000,000)
// registrations in PostgreSQL against 10,000, at the same open-loop rate
// (a quarter of p2http's push_http_0ms throughput unless -scale-rate: a
// moderate load, where latency shows the cost of a push rather than the
// queueing of a nearly saturated core), pushing to registrations picked at random from the whole table.
// Both databases are seeded first (VACUUM ANALYZE included), then one p2http
// per database runs; the two are measured alternately. The target is the
// ratio of the p99s.
//
// Both databases are seeded in the same steady state: every registration
// pushed within the last p2http.PushTimePrecision, at times spread over it.
// That is where a server settles whenever each device is pushed more often
// than that, as at a quarter of the peak on a million registrations (2,600
// pushes/s: each device every 6 minutes on average). At the 250 pushes/s
// used when no push_http run sets the rate, each device is pushed about
// every 67 minutes, and a real server would write more of those pushes than
// this seed lets the run write. A seed never pushed compares different states instead: the small
// side settles within its warm-up, since the same rate pushes each of its
// devices every few seconds, while on the large side every push of the run
// would be a device's first and write its last-push time, as in the first
// hour after an import from p2 (docs/performance.md, change 17).
func (b *bench) scale(ctx context.Context) error {
	sizes := []int{10_000, b.cfg.scaleN}
	var (
		servers [2]*sut
		loads   [2]*pushWorkload
	)
	for i, n := range sizes {
		label := fmt.Sprintf("scale%d", n)
		dbName, url, err := b.pg.create(ctx, label)
		if err != nil {
			return err
		}
		defer b.pg.drop(dbName)
		store, err := db.Open(ctx, url) // the schema, by p2http's migrations
		if err != nil {
			return err
		}
		store.Close()
		began := time.Now()
		progress("scale: seeding %d registrations", n)
		if err := seedPostgres(ctx, url, 0, n, httpDomain, p2http.PushTimePrecision); err != nil {
			return err
		}
		b.note("scale: seeding %d registrations took %v", n, time.Since(began).Round(100*time.Millisecond))
		s, err := b.startP2HTTP(ctx, p2httpOptions{label: label, database: url})
		if err != nil {
			return err
		}
		defer s.stop()
		w, err := newPushWorkload(b, n, httpDomain, s.base, 256)
		if err != nil {
			return err
		}
		w.random = true
		servers[i], loads[i] = s, w
	}
	rate := b.cfg.scaleRate
	if rate <= 0 {
		rate = 250
		if b.pushPeak > 0 {
			rate = math.Round(b.pushPeak / 4)
		}
	}
	run := func(i int) func(int) stats {
		return func(r int) stats {
			return loads[i].measure(ctx, []*sut{servers[i]}, fmt.Sprintf("scale_%d-r%d", sizes[i], r), rate, 256, loads[i].viaP2HTTP)
		}
	}
	small, large := b.sideBySide("scale_1m_p99", run(0), run(1))
	label := loadLabel(b, 256, rate) + ", random registrations"
	b.rows = append(b.rows,
		row{Scenario: "scale_1m_p99", Path: fmt.Sprintf("p2http, %d registrations (baseline)", sizes[0]), Load: label, Stats: small,
			RSS: servers[0].peakRSS()},
		row{Scenario: "scale_1m_p99", Path: fmt.Sprintf("p2http, %d registrations", sizes[1]), Load: label, Stats: large,
			RSS: servers[1].peakRSS()})
	b.note("%s", busyNote("scale_1m_p99", rate, [2]string{fmt.Sprintf("%d registrations", sizes[0]), fmt.Sprintf("%d registrations", sizes[1])},
		[2]stats{small, large}))
	ratio := float64(large.Quantile(0.99)) / float64(small.Quantile(0.99))
	b.targets = append(b.targets, target{Name: "scale_1m_p99", Value: ratio, Op: "<=", Limit: 1.2}.
		check(small.ErrorCount() == 0 && large.ErrorCount() == 0))
	return nil
}
