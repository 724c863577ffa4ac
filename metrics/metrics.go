// Package metrics exports p2http's Prometheus metrics: pushes by service and
// outcome, upstream errors by reason, push and provider latencies, retries,
// registrations by service, HTTP requests by route and status, and the HTTP
// server's connections: open, refused over a cap, and failed. It implements
// the relay's Observer, the API's request hook and the HTTP server's
// Observer.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/httpserver"
)

var _ httpserver.Observer = (*Metrics)(nil)

// Push outcomes, the values of the outcome label.
const (
	Delivered   = "delivered"
	Coalesced   = "coalesced"
	RateLimited = "rate_limited"
	DeadToken   = "dead_token"
	Failed      = "failed"
)

// Counter counts registrations per service; the database implements it.
type Counter interface {
	CountRegistrations(ctx context.Context) (map[p2http.Service]int64, error)
}

// Metrics holds the collectors of one p2http process.
type Metrics struct {
	reg *prometheus.Registry

	pushes    *prometheus.CounterVec
	upstream  *prometheus.CounterVec
	pushTime  *prometheus.HistogramVec
	sendTime  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	requests  *prometheus.CounterVec
	reqTime   *prometheus.HistogramVec
	refused   *prometheus.CounterVec
	connErrs  *prometheus.CounterVec
	countLock sync.Mutex
	counted   map[p2http.Service]int64
	countedAt time.Time
}

// countEvery bounds how often the registrations gauge asks the database:
// counting millions of rows is not free, and scrapes come every few seconds.
const countEvery = time.Minute

// New registers p2http's collectors (and the Go and process collectors). A
// nil counter leaves the registrations gauge out.
func New(counter Counter) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_pushes_total", Help: "Pushes by service and outcome (delivered, coalesced, rate_limited, dead_token, failed).",
	}, []string{"service", "outcome"})
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_upstream_errors_total", Help: "Failed FCM/APNs calls by service and reason (the domain error code).",
	}, []string{"service", "reason"})
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m.pushTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "p2http_push_duration_seconds", Help: "Whole pushes, look-up to answer, retries included.", Buckets: buckets,
	}, []string{"service"})
	m.sendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "p2http_provider_request_duration_seconds", Help: "Single FCM/APNs calls.", Buckets: buckets,
	}, []string{"service"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_push_retries_total", Help: "Retries of temporary provider failures.",
	}, []string{"service"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	m.reqTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "p2http_http_request_duration_seconds", Help: "HTTP requests by route.", Buckets: buckets,
	}, []string{"route"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_http_connections_refused_total",
		Help: "Connections closed at once for being over a cap: per_address (P2_MAX_CONNS_PER_ADDR) or total (P2_MAX_CONNS).",
	}, []string{"reason"})
	m.connErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_http_connection_errors_total",
		Help: "Per-connection errors of the HTTP server by kind (tls_handshake, http2, other); the log shows each kind at most once a minute.",
	}, []string{"kind"})
	m.reg.MustRegister(m.pushes, m.upstream, m.pushTime, m.sendTime, m.retries, m.requests, m.reqTime, m.refused, m.connErrs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range p2http.Services {
		for _, o := range []string{Delivered, Coalesced, RateLimited, DeadToken, Failed} {
			m.pushes.WithLabelValues(string(s), o) // export zeros from the start
		}
	}
	for _, r := range []string{httpserver.RefusedPerAddress, httpserver.RefusedTotal} {
		m.refused.WithLabelValues(r)
	}
	for _, k := range []string{httpserver.ErrTLSHandshake, httpserver.ErrHTTP2, httpserver.ErrOther} {
		m.connErrs.WithLabelValues(k)
	}
	if counter != nil {
		for _, s := range p2http.Services {
			s := s
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "p2http_registrations", Help: "Registrations by service (refreshed at most once a minute).",
				ConstLabels: prometheus.Labels{"service": string(s)},
			}, func() float64 { return float64(m.count(counter)[s]) }))
		}
	}
	return m
}

// count returns the registrations per service, asking the database at most
// once per countEvery.
func (m *Metrics) count(c Counter) map[p2http.Service]int64 {
	m.countLock.Lock()
	defer m.countLock.Unlock()
	if m.counted == nil || time.Since(m.countedAt) > countEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if got, err := c.CountRegistrations(ctx); err == nil {
			m.counted, m.countedAt = got, time.Now()
		}
	}
	return m.counted
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// PushFinished implements relay.Observer: one push ended with err after d.
func (m *Metrics) PushFinished(service p2http.Service, coalesced bool, err error, d time.Duration) {
	outcome := Delivered
	switch code := p2http.ErrorCode(err); {
	case coalesced:
		outcome = Coalesced
	case code == "":
	case code == p2http.ERATELIMIT:
		outcome = RateLimited
	case code == p2http.EGONE:
		outcome = DeadToken
	default:
		outcome = Failed
	}
	if service == "" {
		service = "unknown"
	}
	m.pushes.WithLabelValues(string(service), outcome).Inc()
	if !coalesced {
		m.pushTime.WithLabelValues(string(service)).Observe(d.Seconds())
	}
}

// Sent implements relay.Observer: one FCM/APNs call returned err after d.
func (m *Metrics) Sent(service p2http.Service, err error, d time.Duration) {
	m.sendTime.WithLabelValues(string(service)).Observe(d.Seconds())
	if err != nil {
		m.upstream.WithLabelValues(string(service), p2http.ErrorCode(err)).Inc()
	}
}

// Retried implements relay.Observer.
func (m *Metrics) Retried(service p2http.Service) { m.retries.WithLabelValues(string(service)).Inc() }

// Request records one HTTP request; route is the route pattern.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.reqTime.WithLabelValues(route).Observe(d.Seconds())
}

// ConnRefused implements httpserver.Observer: one connection was closed for
// being over the cap named by reason.
func (m *Metrics) ConnRefused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// ConnError implements httpserver.Observer: one per-connection error of
// kind.
func (m *Metrics) ConnError(kind string) { m.connErrs.WithLabelValues(kind).Inc() }

// OpenConns exports open, the number of connections the HTTP server holds
// now, as a gauge.
func (m *Metrics) OpenConns(open func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "p2http_http_connections_open", Help: "Connections the HTTP server holds now.",
	}, func() float64 { return float64(open()) }))
}
