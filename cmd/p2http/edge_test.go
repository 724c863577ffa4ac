package main

// The public edge (issue 18): connection caps, the request head's cap, the
// HTTP/2 stream cap, and the throttled log of failed TLS handshakes, each
// against the real service started by run.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	binenc "encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/testutil"
)

// openIdle makes a connection that sent one request, read its answer and
// now idles (kept alive); nil when the server refused it.
func openIdle(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	c := testutil.DialFrom(t, from, addr)
	if c == nil {
		return nil
	}
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return nil
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz from %s: %d", from, res.StatusCode)
	}
	return c
}

// openSlowBody makes a connection that sent a request's head and the start
// of its body, and sends no more.
func openSlowBody(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	c := testutil.DialFrom(t, from, addr)
	if c == nil {
		return nil
	}
	io.WriteString(c, "POST /v1/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
		"Content-Length: 1000\r\n\r\n{\"service\":")
	return c
}

// scrapeMetric reads one sample of /metrics on a connection of its own.
func scrapeMetric(t *testing.T, hc *http.Client, base, sample string) float64 {
	t.Helper()
	res, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics lacks %s", sample)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// The connection caps hold: one address gets no more than its share, the
// server no more than its total, and a connection over a cap is closed at
// once and counted. Meanwhile, while two addresses sit at their caps and
// one of them keeps knocking, a genuine push from another address is
// answered within the push deadline.
func TestConnectionCaps(t *testing.T) {
	const perAddr, total = 4, 10
	base, _ := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db"),
		"P2_MAX_CONNS":    strconv.Itoa(total), "P2_MAX_CONNS_PER_ADDR": strconv.Itoa(perAddr)})
	addr := strings.TrimPrefix(base, "http://")
	// The genuine client comes from 127.0.0.1 and keeps no connection.
	genuine := &http.Client{Timeout: faultClientTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	p, a := register(base, newPhone("fcm", "alice@example.org", "caps"))
	if !a.ok() {
		t.Fatalf("register: %v", a)
	}
	faultClient.CloseIdleConnections()

	// Two attackers, each with idle and slow-body connections, two over
	// its cap. The ones over the cap send a request: an answer shows a
	// connection kept, beyond doubt, however slow the machine. The server
	// accepts in order, so the slow-body connections before them have been
	// taken by then.
	var slow []net.Conn
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		for i := range perAddr + 2 {
			if i%2 == 1 && i < perAddr {
				slow = append(slow, openSlowBody(t, from, addr))
				continue
			}
			if held := openIdle(t, from, addr) != nil; held != (i < perAddr) {
				t.Fatalf("connection %d from %s: kept %v, the cap is %d per address", i+1, from, held, perAddr)
			}
		}
	}
	for i, c := range slow {
		if !testutil.Held(c) {
			t.Fatalf("slow-body connection %d was closed under the cap", i+1)
		}
	}
	if n := scrapeMetric(t, genuine, base, `p2http_http_connections_refused_total{reason="per_address"}`); n != 4 {
		t.Fatalf("refused per address: %v, want 4", n)
	}

	// 127.0.0.2 keeps knocking while the genuine push goes through.
	stop := make(chan struct{})
	var knocks atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
			if c, err := d.Dial("tcp", addr); err == nil {
				c.Close()
			}
			knocks.Add(1)
		}
	})
	req := newPushRequest(t, base, p)
	began := time.Now()
	res, err := genuine.Do(req)
	took := time.Since(began)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("genuine push while two addresses sit at their caps: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || took > 10*time.Second {
		t.Fatalf("genuine push: %d after %v, want 200 within the push deadline (10 s)", res.StatusCode, took)
	}
	t.Logf("genuine push answered in %v while 127.0.0.2 knocked %d times", took.Round(time.Millisecond), knocks.Load())

	// The total: a third address fills it; beyond, even an address under
	// its own cap is refused.
	// Once register's and the genuine push's connections are gone, a
	// scrape is the only connection besides the attackers'.
	testutil.Eventually(t, 5*time.Second, "the genuine connections closed", func() bool {
		return scrapeMetric(t, genuine, base, "p2http_http_connections_open") == 2*perAddr+1
	})
	for i := range total - 2*perAddr {
		// The scrape's own connection may still be closing: try again.
		kept := false
		for try := 0; try < 20 && !kept; try++ {
			if kept = openIdle(t, "127.0.0.4", addr) != nil; !kept {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !kept {
			t.Fatalf("connection %d from 127.0.0.4 refused under the total", i+1)
		}
	}
	for _, from := range []string{"127.0.0.4", "127.0.0.5", "127.0.0.1"} {
		if c := openIdle(t, from, addr); c != nil {
			t.Fatalf("a connection from %s over the total (%d) was kept", from, total)
		}
	}
	if _, err := genuine.Get(base + "/healthz"); err == nil {
		t.Fatal("a request over the total was answered")
	}
}

// newPushRequest is phone p's push as the genuine client sends it.
func newPushRequest(t *testing.T, base string, p phone) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/push",
		strings.NewReader(fmt.Sprintf(`{"node":%q,"secret":%q,"important":true}`, p.node, p.secret)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startTLS runs p2http over HTTPS and returns its https:// base URL, its
// log and a client that trusts it.
func startTLS(t *testing.T) (string, *testutil.LogBuffer, *http.Client) {
	t.Helper()
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	base, logs := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_TLS_CERT": cert, "P2_TLS_KEY": key})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return strings.Replace(base, "http://", "https://", 1), logs, hc
}

// A flood of failed TLS handshakes (a scanner, plain HTTP on the HTTPS
// port) leaves one log line, not one per connection, and the metric counts
// every one.
func TestTLSHandshakeErrorsThrottled(t *testing.T) {
	base, logs, hc := startTLS(t)
	addr := strings.TrimPrefix(base, "https://")
	const flood = 300
	for i := range flood {
		c := testutil.DialFrom(t, "127.0.0.2", addr)
		if c == nil {
			t.Fatalf("connection %d reset at once", i+1)
		}
		if i%2 == 0 {
			io.WriteString(c, "GET / HTTP/1.0\r\n\r\n") // plain HTTP
		} else {
			c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 'n', 'o', 'i', 's', 'e'}) // a broken ClientHello
		}
		io.Copy(io.Discard, c)
		c.Close()
	}
	// The server logs a failed handshake before it closes the connection,
	// which the loop waited for: every line that will be is written.
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "TLS handshake") || strings.Contains(l, "tls_handshake") {
			lines++
		}
	}
	if lines > 2 {
		t.Fatalf("%d log lines for %d failed handshakes", lines, flood)
	}
	sample := `p2http_http_connection_errors_total{kind="tls_handshake"}`
	if n := scrapeMetric(t, hc, base, sample); n != flood {
		t.Fatalf("%s %v, want %d", sample, n, flood)
	}
}

// A request head over the cap gets 431, and an HTTP/2 connection is told
// the stream cap and the head cap in the server's first SETTINGS frame.
func TestRequestHeadAndStreamsCapped(t *testing.T) {
	base, _, hc := startTLS(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 16<<10))
	hc1 := &http.Client{Timeout: 10 * time.Second, Transport: hc.Transport.(*http.Transport).Clone()}
	hc1.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1
	res, err := hc1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 16 KiB request head: %d, want 431", res.StatusCode)
	}

	settings := h2Settings(t, strings.TrimPrefix(base, "https://"), hc.Transport.(*http.Transport).TLSClientConfig.RootCAs)
	const maxConcurrentStreams, maxHeaderListSize = 0x3, 0x6
	if got := settings[maxConcurrentStreams]; got != httpserver.MaxConcurrentStreams {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, httpserver.MaxConcurrentStreams)
	}
	if got := settings[maxHeaderListSize]; got == 0 || got > 16<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d, want at most 16 KiB", got)
	}
}

// h2Settings opens an HTTP/2 connection and returns the settings of the
// server's first frame.
func h2Settings(t *testing.T, addr string, roots *x509.CertPool) map[uint16]uint32 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	c.Write([]byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0}) // our empty SETTINGS
	var head [9]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		t.Fatal(err)
	}
	n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
	if head[3] != 0x4 {
		t.Fatalf("first frame of type %d, want SETTINGS", head[3])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatal(err)
	}
	out := map[uint16]uint32{}
	for i := 0; i+6 <= len(payload); i += 6 {
		out[binenc.BigEndian.Uint16(payload[i:])] = binenc.BigEndian.Uint32(payload[i+2:])
	}
	return out
}

// The caps are configurable, and a cap per address above the total is
// refused with the variable named.
func TestConnectionCapsConfig(t *testing.T) {
	cfg, err := loadConfig([]string{"-max-conns-per-addr", "300"}, envOf(map[string]string{"P2_MAX_CONNS": "500"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 500 || cfg.MaxConnsPerAddr != 300 {
		t.Fatalf("caps %d, %d", cfg.MaxConns, cfg.MaxConnsPerAddr)
	}
	if cfg, _ := loadConfig(nil, envOf(nil)); cfg.MaxConns != httpserver.DefaultMaxConns || cfg.MaxConnsPerAddr != httpserver.DefaultMaxConnsPerAddr {
		t.Fatalf("default caps %d, %d", cfg.MaxConns, cfg.MaxConnsPerAddr)
	}
	for _, c := range []struct{ env, value, names string }{
		{"P2_MAX_CONNS", "100", "P2_MAX_CONNS_PER_ADDR"}, // under the default per address
		{"P2_MAX_CONNS_PER_ADDR", "0", "P2_MAX_CONNS_PER_ADDR"},
		{"P2_MAX_CONNS", "many", "P2_MAX_CONNS"},
	} {
		_, err := loadConfig(nil, envOf(map[string]string{c.env: c.value}))
		if err == nil || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s=%s: error %v does not name %s", c.env, c.value, err, c.names)
		}
	}
}
