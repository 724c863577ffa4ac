// Package metrics exports p2http's Prometheus metrics: pushes by app,
// service, outcome and reason, upstream errors by reason, push and provider
// latencies, retries, the pushes in flight and their bound, readiness per
// app and service, registrations by service, HTTP requests by route and
// status, the HTTP server's connections (open, refused over a cap, failed)
// and the build. It implements the relay's Observer, the API's request hook
// and the HTTP server's Observer. docs/operations.md lists the metrics and
// the alerts of contrib/prometheus built on them.
//
// Every counter is exported at zero from the start for each of its known
// label values, so that rate() and increase() see the first event and an
// alert needs no "or vector(0)". The label values are bounded: apps are the
// configured ones (anything else is "unknown", never a caller's string),
// services the known ones, outcomes and reasons those of one table
// (outcomes). The children of the push metrics are resolved once, in New:
// a push costs map and array look-ups, no allocation.
package metrics

import (
	"context"
	"net/http"
	"runtime"
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

// Unknown is the app label of a push whose app is not one this instance
// serves (or not known: it failed before its node was resolved, and the
// request named no app), and the service label of a push that failed before
// its node was resolved.
const Unknown = "unknown"

// Counter counts registrations per service; the database implements it.
type Counter interface {
	CountRegistrations(ctx context.Context) (map[p2http.Service]int64, error)
}

// Config is what New builds the metrics from.
type Config struct {
	// Version is the build's version, p2http_build_info's version label.
	Version string
	// Apps are the apps this instance serves, the default one included:
	// the values of the app label, besides Unknown.
	Apps []p2http.App
	// States are every state a service can be in (apps.States); Readiness
	// exports each, 1 for the current one and 0 for the others.
	States []string
	// Registrations counts the registrations per service; nil leaves the
	// registrations gauge out (the stateless mode keeps none).
	Registrations Counter
}

// Metrics holds the collectors of one p2http process.
type Metrics struct {
	reg    *prometheus.Registry
	states []string

	pushes   *prometheus.CounterVec
	upstream *prometheus.CounterVec
	pushTime *prometheus.HistogramVec
	sendTime *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	requests *prometheus.CounterVec
	reqTime  *prometheus.HistogramVec
	refused  *prometheus.CounterVec
	connErrs *prometheus.CounterVec

	// apps holds the push metrics' children of each configured app, unknown
	// those of every other; both are only read after New.
	apps    map[p2http.App]*appSeries
	unknown *appSeries

	countLock sync.Mutex
	counted   map[p2http.Service]int64
	countedAt time.Time
}

// appSeries are one app's children, per service in the order of
// p2http.Services, then the unknown service's.
type appSeries [numServices + 1]*series

// numServices is len(p2http.Services), a constant for appSeries.
const numServices = 2

// series are the children of one app and service.
type series struct {
	pushes   [len(outcomes)]prometheus.Counter
	duration prometheus.Observer // nil for the unknown app or service
	sendTime prometheus.Observer // nil for the unknown app or service
	retries  prometheus.Counter  // nil for the unknown app or service
	// upstream holds the counters of the reasons a provider call can fail
	// with (upstreamCodes), by the index of outcomes; nil for the others.
	upstream [len(outcomes)]prometheus.Counter
}

// timed says which outcomes the delivery histogram observes: not the
// rejected or coalesced pushes, which never went to a provider.
var timed = func() (t [len(outcomes)]bool) {
	for i, o := range outcomes {
		t[i] = o.outcome != Rejected && o.outcome != Coalesced
	}
	return t
}()

// upstreamCodes are the codes a Sender returns (p2http.Sender): the
// reasons of p2http_upstream_errors_total exported from the start.
var upstreamCodes = []string{p2http.EGONE, p2http.EINVALID, p2http.EUNAVAILABLE, p2http.ETIMEOUT, p2http.EUPSTREAM, p2http.EINTERNAL}

// countEvery bounds how often the registrations gauge asks the database:
// counting millions of rows is not free, and scrapes come every few seconds.
const countEvery = time.Minute

// New registers p2http's collectors (and the Go and process collectors),
// with every counter's children for cfg's apps at zero.
func New(cfg Config) *Metrics {
	if len(p2http.Services) != numServices {
		panic("metrics: numServices is not len(p2http.Services)")
	}
	m := &Metrics{reg: prometheus.NewRegistry(), states: cfg.States}
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_pushes_total",
		Help: "Pushes by app, service, outcome (delivered, coalesced, dead_token; rejected: the caller's doing; failed: ours or the provider's) and reason.",
	}, []string{"app", "service", "outcome", "reason"})
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_upstream_errors_total", Help: "Failed FCM/APNs calls by app, service and reason.",
	}, []string{"app", "service", "reason"})
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m.pushTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "p2http_push_duration_seconds",
		Help:    "Pushes that went to a provider (delivered, failed, dead_token), look-up to answer, retries included.",
		Buckets: buckets,
	}, []string{"app", "service"})
	m.sendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "p2http_provider_request_duration_seconds", Help: "Single FCM/APNs calls.", Buckets: buckets,
	}, []string{"app", "service"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2http_push_retries_total", Help: "Retries of temporary provider failures.",
	}, []string{"app", "service"})
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
		BuildInfo("p2http", cfg.Version),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.apps = make(map[p2http.App]*appSeries, len(cfg.Apps))
	for _, app := range cfg.Apps {
		if app == "" || app == Unknown {
			// "" names no app; an app called "unknown" shares the
			// children of every app this instance does not serve.
			continue
		}
		m.apps[app] = m.appSeries(string(app), true)
	}
	m.unknown = m.appSeries(Unknown, false)
	for _, r := range []string{httpserver.RefusedPerAddress, httpserver.RefusedTotal} {
		m.refused.WithLabelValues(r)
	}
	for _, k := range []string{httpserver.ErrTLSHandshake, httpserver.ErrHTTP2, httpserver.ErrOther} {
		m.connErrs.WithLabelValues(k)
	}
	if cfg.Registrations != nil {
		for _, s := range p2http.Services {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "p2http_registrations", Help: "Registrations by service (refreshed at most once a minute).",
				ConstLabels: prometheus.Labels{"service": string(s)},
			}, func() float64 { return float64(m.count(cfg.Registrations)[s]) }))
		}
	}
	return m
}

// appSeries creates the children of app, for each service and the unknown
// one; sends tells whether the app sends at all (it has senders), and so
// gets the delivery and provider metrics.
func (m *Metrics) appSeries(app string, sends bool) *appSeries {
	a := &appSeries{}
	for i := range a {
		service, known := Unknown, i < numServices
		if known {
			service = string(p2http.Services[i])
		}
		s := &series{}
		for j, o := range outcomes {
			s.pushes[j] = m.pushes.WithLabelValues(app, service, o.outcome, o.reason)
		}
		if known && sends {
			s.duration = m.pushTime.WithLabelValues(app, service)
			s.sendTime = m.sendTime.WithLabelValues(app, service)
			s.retries = m.retries.WithLabelValues(app, service)
			for _, code := range upstreamCodes {
				j := byCode[code]
				s.upstream[j] = m.upstream.WithLabelValues(app, service, outcomes[j].reason)
			}
		}
		a[i] = s
	}
	return a
}

// series returns the children of app and service: an app or service
// this instance does not know counts as Unknown.
func (m *Metrics) series(app p2http.App, service p2http.Service) *series {
	a := m.apps[app]
	if a == nil {
		a = m.unknown
	}
	for i, s := range p2http.Services {
		if s == service {
			return a[i]
		}
	}
	return a[numServices]
}

// BuildInfo returns the gauge NAME_build_info, 1, whose labels say which
// build runs: version (the binary's) and goversion (the Go release it was
// built with). p2http and p2xmpp export one each.
func BuildInfo(name, version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        name + "_build_info",
		Help:        "1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
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

// PushFinished implements relay.Observer: one push for app and service
// (each Unknown when not one this instance knows) was coalesced, or ended
// with err, after d. Rejected and coalesced pushes stay out of the delivery
// histogram.
func (m *Metrics) PushFinished(app p2http.App, service p2http.Service, coalesced bool, err error, d time.Duration) {
	s := m.series(app, service)
	i := outcomeIndex(err, coalesced)
	s.pushes[i].Inc()
	if timed[i] && s.duration != nil {
		s.duration.Observe(d.Seconds())
	}
}

// Sent implements relay.Observer: one FCM/APNs call of app returned err
// after d.
func (m *Metrics) Sent(app p2http.App, service p2http.Service, err error, d time.Duration) {
	s := m.series(app, service)
	if s.sendTime != nil {
		s.sendTime.Observe(d.Seconds())
	} else {
		m.sendTime.WithLabelValues(m.labels(app, service)...).Observe(d.Seconds())
	}
	if err == nil {
		return
	}
	i := outcomeIndex(err, false)
	if c := s.upstream[i]; c != nil {
		c.Inc()
		return
	}
	m.upstream.WithLabelValues(append(m.labels(app, service), outcomes[i].reason)...).Inc()
}

// Retried implements relay.Observer: a temporary failure of a call of app
// is tried again.
func (m *Metrics) Retried(app p2http.App, service p2http.Service) {
	if c := m.series(app, service).retries; c != nil {
		c.Inc()
		return
	}
	m.retries.WithLabelValues(m.labels(app, service)...).Inc()
}

// labels returns the app and service labels of a provider call that has no
// children resolved in New: a reason no Sender is documented to return, or
// an app or service that sends nothing. Counted all the same, at the cost
// of a look-up.
func (m *Metrics) labels(app p2http.App, service p2http.Service) []string {
	a, s := string(app), string(service)
	if m.apps[app] == nil {
		a = Unknown
	}
	if !service.Valid() {
		s = Unknown
	}
	return []string{a, s}
}

// InFlight exports the pushes being handled now and their bound
// (P2_MAX_INFLIGHT), which inflight (relay.Relay's InFlight) reports at each
// scrape.
func (m *Metrics) InFlight(inflight func() (n, limit int)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "p2http_pushes_in_flight", Help: "Pushes being handled now, trailing pushes of coalescing included (sampled at the scrape).",
		}, func() float64 { n, _ := inflight(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "p2http_pushes_in_flight_limit", Help: "The bound on pushes in flight (P2_MAX_INFLIGHT); beyond it a push is refused at once (failed, unavailable).",
		}, func() float64 { _, limit := inflight(); return float64(limit) }),
	)
}

// Readiness is what /readyz knows: stack.Stack implements it.
type Readiness interface {
	// Ready reports whether /readyz answers 200: the database answers
	// with its migrations applied.
	Ready(ctx context.Context) bool
	// ServiceStates returns the state of each app's services, by app, the
	// default app's included.
	ServiceStates() map[p2http.App]map[p2http.Service]string
}

// Readiness exports what r says at each scrape: p2http_ready, and
// p2http_service_state{app,service,state}, 1 for the state each app's
// service is in and 0 for the other states of Config.States.
func (m *Metrics) Readiness(r Readiness) {
	m.reg.MustRegister(&readiness{r: r, states: m.states,
		ready: prometheus.NewDesc("p2http_ready", "1 while /readyz answers 200: the database answers with its migrations applied.", nil, nil),
		state: prometheus.NewDesc("p2http_service_state",
			"1 for the state each app's push service is in (ok, dev-log, not-configured, degraded: the provider refuses our credentials), 0 for the others; as /readyz says.",
			[]string{"app", "service", "state"}, nil),
	})
}

// readiness collects the readiness gauges at each scrape.
type readiness struct {
	r            Readiness
	states       []string
	ready, state *prometheus.Desc
}

func (c *readiness) Describe(ch chan<- *prometheus.Desc) { ch <- c.ready; ch <- c.state }

func (c *readiness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ready := 0.0
	if c.r.Ready(ctx) {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	for app, services := range c.r.ServiceStates() {
		for service, current := range services {
			seen := false
			for _, st := range c.states {
				v := 0.0
				if st == current {
					v, seen = 1, true
				}
				ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, string(app), string(service), st)
			}
			if !seen {
				ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, string(app), string(service), current)
			}
		}
	}
}

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
