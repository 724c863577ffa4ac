package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	xmppstanza "mellium.im/xmpp/stanza"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/xmpp"
)

// p2xmppMetrics are p2xmpp's own metrics: the build, the state of the link
// to the XMPP server, requests answered by kind and outcome, and stanza
// errors by type and condition. Each counter is exported at zero from the
// start for every kind, outcome and stanza error there is.
type p2xmppMetrics struct {
	reg       *prometheus.Registry
	connected prometheus.Gauge
	stanzas   *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// The outcomes of an answered request, the values of the outcome label of
// p2xmpp_stanzas_total: a result, or a failure counted as p2http counts
// pushes (metrics.Outcome).
var outcomes = []string{"result", metrics.DeadToken, metrics.Rejected, metrics.Failed}

func newMetrics(version string) *p2xmppMetrics {
	m := &p2xmppMetrics{reg: prometheus.NewRegistry()}
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "p2xmpp_connected", Help: "1 while the component is connected to the XMPP server.",
	})
	m.stanzas = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2xmpp_stanzas_total",
		Help: "Requests answered, by kind (publish, command, ping, disco#info, ...) and outcome (result, dead_token; rejected: the requester's doing; failed: p2xmpp's, p2http's or a provider's).",
	}, []string{"kind", "outcome"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2xmpp_errors_total", Help: "Stanza errors sent, by type and condition.",
	}, []string{"type", "condition"})
	m.reg.MustRegister(m.connected, m.stanzas, m.errors, metrics.BuildInfo("p2xmpp", version),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, kind := range xmpp.Kinds {
		for _, o := range outcomes {
			m.stanzas.WithLabelValues(kind, o)
		}
	}
	for _, e := range xmpp.StanzaErrors() {
		m.errors.WithLabelValues(string(e.Type), string(e.Condition))
	}
	return m
}

// observe records one answered request of kind, failed with err (nil: a
// result).
func (m *p2xmppMetrics) observe(kind string, err error) {
	m.stanzas.WithLabelValues(kind, outcomeOf(err)).Inc()
	if err != nil {
		e := xmpp.ErrorFor(err)
		m.errors.WithLabelValues(string(e.Type), string(e.Condition)).Inc()
	}
}

// outcomeOf is the outcome label of a request answered with err: result;
// for a code of the domain's, the outcome p2http gives a push failing with
// it (metrics.Outcome: a stale node, a wrong secret or a spent budget are
// rejected, p2http or a provider in trouble failed); for p2xmpp's own codes
// (a malformed stanza, a jid mismatch, a shutdown), failed when its stanza
// error is wait and rejected otherwise.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "result"
	case metrics.DomainCode(p2http.ErrorCode(err)):
		o, _ := metrics.Outcome(err, false)
		return o
	case xmpp.ErrorFor(err).Type == xmppstanza.Wait:
		return metrics.Failed
	}
	return metrics.Rejected
}

func (m *p2xmppMetrics) setConnected(up bool) {
	if up {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// serve serves /metrics on addr until ctx ends.
func (m *p2xmppMetrics) serve(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}
