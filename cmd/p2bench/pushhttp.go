package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// apiClient is the generator's HTTP/1.1 client for p2http, with one
// keep-alive connection per concurrent request.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string, conns int) *apiClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// post sends a JSON body and returns the status and the start of the
// answer, read into buf.
func (c *apiClient) post(ctx context.Context, path string, body, buf []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(c.hc, req, buf)
}

// do sends req and reads up to len(buf) bytes of the answer into buf.
func do(hc *http.Client, req *http.Request, buf []byte) (int, []byte, error) {
	res, err := hc.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) && ne.Timeout() {
			return 0, nil, fmt.Errorf("timeout: %w", err)
		}
		return 0, nil, fmt.Errorf("transport error: %w", err)
	}
	n, _ := io.ReadFull(res.Body, buf)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, buf[:n], nil
}

// httpError is the error of an unexpected status; its kind is "http NNN".
func httpError(status int, body []byte) error {
	return fmt.Errorf("http %d: %s", status, bytes.TrimSpace(body))
}

// loadLabel describes the offered load and the runs of a comparison.
func loadLabel(b *bench, conc int, rate float64) string {
	runs := fmt.Sprintf("%d×(%v+%v)", b.cfg.rounds, b.cfg.warmup, b.cfg.duration)
	if rate > 0 {
		return fmt.Sprintf("open %.0f/s (%d conns), %s", rate, conc, runs)
	}
	return fmt.Sprintf("C=%d, %s", conc, runs)
}

// pushHTTP is the push (HTTP) scenario: 10,000 registrations in PostgreSQL,
// C clients POST /v1/push, coalescing off so that every push must reach the
// fake FCM; the ceiling is the same generator sending the same FCM requests
// straight to the fake. At fake latency 0 ms and 30 ms; then p2http's added
// latency at half its peak, and its peak RSS over the scenario.
func (b *bench) pushHTTP(ctx context.Context) error {
	const n = 10_000
	dbName, dsn, err := b.pg.create(ctx, "push")
	if err != nil {
		return err
	}
	defer b.pg.drop(dbName)
	s, err := b.startP2HTTP(ctx, p2httpOptions{label: "push", database: dsn})
	if err != nil {
		return err
	}
	defer s.stop()
	if err := seedPostgres(ctx, dsn, 0, n, httpDomain, 0); err != nil {
		return err
	}
	conc := b.cfg.conc
	const openConns = 256
	w, err := newPushWorkload(b, n, httpDomain, s.base, max(conc, openConns))
	if err != nil {
		return err
	}
	progress("push_http: pushing to every registration once")
	took, err := w.warm(ctx, conc)
	if err != nil {
		return err
	}
	b.note("push_http: pushing to each of the %d registrations once before measuring took %v", n, took.Round(100*time.Millisecond))

	var peak float64
	for _, lat := range []time.Duration{0, 30 * time.Millisecond} {
		name := fmt.Sprintf("push_http_%dms", lat.Milliseconds())
		b.fcm.SetLatency(lat)
		ceil, got := b.sideBySide(name, func(r int) stats {
			return w.measure(ctx, nil, "", 0, conc, w.direct)
		}, func(r int) stats {
			return w.measure(ctx, []*sut{s}, fmt.Sprintf("%s-r%d", name, r), 0, conc, w.viaP2HTTP)
		})
		ratio := got.Throughput() / ceil.Throughput()
		b.rows = append(b.rows,
			row{Scenario: name, Path: "ceiling: generator -> fake FCM", Load: loadLabel(b, conc, 0), Stats: ceil},
			row{Scenario: name, Path: "generator -> p2http -> fake FCM", Load: loadLabel(b, conc, 0), Stats: got, RSS: s.peakRSS(), Ratio: ratio})
		limit := 0.5
		if lat > 0 {
			limit = 0.9
		}
		b.targets = append(b.targets, target{Name: name, Value: ratio, Op: ">=", Limit: limit}.check(got.ErrorCount() == 0 && ceil.ErrorCount() == 0))
		if lat == 0 {
			peak = got.Throughput()
			b.pushPeak = peak
		}
	}

	// p2http's added latency at half its peak: an open-loop rate of half the
	// throughput just measured, through p2http with the fake FCM answering at
	// once, and the same rate straight to the fake. What p2http adds is the
	// difference of the two p99s (the rows show both).
	b.fcm.SetLatency(0)
	if peak <= 0 {
		return errors.New("p2http delivered nothing in push_http_0ms: no rate for the added latency")
	}
	rate := peak / 2
	if b.cfg.addedRate > 0 {
		b.note("push_added_p99_ms ran at -added-rate %.0f/s, not at half of the peak (%.0f/s) as the target is defined", b.cfg.addedRate, rate)
		rate = b.cfg.addedRate
	}
	ceil, got := b.sideBySide("push_added_p99_ms", func(r int) stats {
		return w.measure(ctx, nil, "", rate, openConns, w.direct)
	}, func(r int) stats {
		return w.measure(ctx, []*sut{s}, fmt.Sprintf("push_added_p99_ms-r%d", r), rate, openConns, w.viaP2HTTP)
	})
	// What is live under load, and what each push allocated in the whole
	// scenario (the heap profile's alloc_space).
	b.memoryProfiles(s, "push_http-p2http")
	b.rows = append(b.rows,
		row{Scenario: "push_added_p99_ms", Path: "ceiling: generator -> fake FCM", Load: loadLabel(b, openConns, rate), Stats: ceil},
		row{Scenario: "push_added_p99_ms", Path: "generator -> p2http -> fake FCM", Load: loadLabel(b, openConns, rate), Stats: got,
			RSS: s.peakRSS()})
	b.note("%s", busyNote("push_added_p99_ms", rate, [2]string{"ceiling", "through p2http"}, [2]stats{ceil, got}))
	added := got.Quantile(0.99) - ceil.Quantile(0.99)
	b.targets = append(b.targets, target{Name: "push_added_p99_ms", Value: ms64(added), Op: "<=", Limit: 2}.
		check(got.ErrorCount() == 0 && ceil.ErrorCount() == 0))
	b.targets = append(b.targets, target{Name: "rss_push_mib", Value: s.peakRSS(), Op: "<=", Limit: 64}.check(true))
	return nil
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
