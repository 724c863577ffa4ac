package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
)

func TestDefaults(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	cert := &tls.Certificate{Certificate: [][]byte{{1}}, PrivateKey: k}

	for _, c := range []struct {
		cfg      Config
		endpoint string
		cert     bool
	}{
		{Config{Topic: "a", SigningKey: key, KeyID: "k", TeamID: "t"}, ProductionEndpoint, false},
		{Config{Topic: "a", SigningKey: key, KeyID: "k", TeamID: "t", Sandbox: true}, SandboxEndpoint, false},
		{Config{Topic: "a", Certificate: cert, Sandbox: true, Endpoint: "https://apns.example/"}, "https://apns.example", true},
	} {
		s, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.endpoint != c.endpoint {
			t.Errorf("endpoint = %q, want %q", s.endpoint, c.endpoint)
		}
		// The client New hands to sharedheader.New.
		hc, err := httpClient(c.cfg.HTTPClient, c.cfg.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		tr, ok := hc.Transport.(*http.Transport)
		if !ok {
			t.Fatalf("transport %T", hc.Transport)
		}
		if !tr.ForceAttemptHTTP2 || tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout == 0 {
			t.Error("default transport does not attempt HTTP/2 with health checks")
		}
		if tr.IdleConnTimeout != 0 {
			t.Errorf("idle connections closed after %v", tr.IdleConnTimeout)
		}
		if got := len(tr.TLSClientConfig.Certificates) == 1; got != c.cert {
			t.Errorf("client certificate present = %v, want %v", got, c.cert)
		}
		if (s.key != nil) == c.cert {
			t.Error("wrong authentication mode")
		}
	}
}
