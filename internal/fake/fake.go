// Package fake runs real HTTP servers that stand in for Google's FCM and
// Apple's APNs in tests and benchmarks: they speak HTTP/2 over TLS, record
// what they receive and answer as told. Nothing else in p2http is faked.
package fake

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Request is one request a fake received.
type Request struct {
	Method string
	Path   string
	Proto  int // major HTTP version
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value, for APNs payloads; an FCM
// message reads typed through FCMMessage.
func (r Request) JSON() map[string]any {
	var v map[string]any
	json.Unmarshal(r.Body, &v)
	return v
}

// Answer is what a fake replies to one request.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
	// Delay holds the answer back, for latency and timeout tests.
	Delay time.Duration
}

// recorder keeps requests and a queue of programmed answers.
type recorder struct {
	mu       sync.Mutex
	requests []Request
	queue    []Answer
	always   *Answer
	latency  time.Duration
}

// Requests returns a copy of what was received so far.
func (r *recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Reset forgets the received requests and the programmed answers.
func (r *recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests, r.queue, r.always = nil, nil, nil
}

// Next queues answers for the next requests, in order; afterwards the fake
// answers success again.
func (r *recorder) Next(a ...Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, a...)
}

// Always makes every request get a; nil restores success.
func (r *recorder) Always(a *Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.always = a
}

// SetLatency delays every successful answer.
func (r *recorder) SetLatency(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency = d
}

// take records req and returns the programmed answer, if any, and the latency.
func (r *recorder) take(req Request) (*Answer, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	if len(r.queue) > 0 {
		a := r.queue[0]
		r.queue = r.queue[1:]
		return &a, r.latency
	}
	return r.always, r.latency
}

func write(w http.ResponseWriter, a Answer) {
	if a.Delay > 0 {
		time.Sleep(a.Delay)
	}
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.Status)
	w.Write([]byte(a.Body))
}

// startTLS starts h over HTTP/2 and TLS and returns the server and a client
// that trusts it.
func startTLS(h http.Handler) (*httptest.Server, *http.Client) {
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 100,
	}
	return srv, &http.Client{Transport: tr}
}
