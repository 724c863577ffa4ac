package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// p2xmppMetrics are p2xmpp's own metrics: the state of the link to the XMPP
// server, stanzas answered by kind and outcome, and stanza errors by
// condition.
type p2xmppMetrics struct {
	reg       *prometheus.Registry
	connected prometheus.Gauge
	stanzas   *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

func newMetrics() *p2xmppMetrics {
	m := &p2xmppMetrics{reg: prometheus.NewRegistry()}
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "p2xmpp_connected", Help: "1 while the component is connected to the XMPP server.",
	})
	m.stanzas = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2xmpp_stanzas_total", Help: "Requests answered, by kind (command, publish, disco, ping, other) and outcome.",
	}, []string{"kind", "outcome"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "p2xmpp_errors_total", Help: "Stanza errors sent, by type and condition.",
	}, []string{"type", "condition"})
	m.reg.MustRegister(m.connected, m.stanzas, m.errors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one answered request.
func (m *p2xmppMetrics) observe(kind, outcome string) {
	m.stanzas.WithLabelValues(kind, outcome).Inc()
	if typ, cond, ok := strings.Cut(outcome, "/"); ok {
		m.errors.WithLabelValues(typ, cond).Inc()
	}
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
