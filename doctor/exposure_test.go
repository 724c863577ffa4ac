package doctor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/doctor"
	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/sealed"
)

// now is the clock the certificate tests judge by.
var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// certificate writes a self-signed certificate and its key, valid for
// validFor from an hour before now, with the extensions and subject UID
// given (an APNs certificate's), and returns the two files.
func (s *setup) certificate(name string, validFor time.Duration, uid string, extensions ...asn1.ObjectIdentifier) (cert, key string) {
	s.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"push.example.org"},
		Subject:   pkix.Name{CommonName: "push.example.org"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validFor),
	}
	if uid != "" {
		tmpl.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: uid}}
	}
	for _, id := range extensions {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: id, Value: []byte{5, 0}})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		s.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return s.write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		s.write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// Who can reach the listener and what they may do there.
func TestExposure(t *testing.T) {
	s := newSetup(t)
	s.cfg.Now = func() time.Time { return now }

	s.cfg.Listen, s.cfg.AllowedHosts = "0.0.0.0:8080", nil // P2_ALLOW_OPEN_REGISTRATION
	r := s.run(doctor.Options{})
	r.want(t, "listener", "", checkup.Warn, "reachable from other machines", "P2_API_TOKENS")
	r.want(t, "api-tokens", "", checkup.Warn, "P2_API_TOKENS")
	r.want(t, "tls", "", checkup.Warn, "in clear", "P2_TLS_CERT")
	r.want(t, "allowed-hosts", "", checkup.OK, "P2_ALLOWED_HOSTS")
	r.want(t, "metrics", "", checkup.Warn, "open to everyone")

	s.cfg.APITokens, s.cfg.Metrics, s.cfg.AllowedHosts = 2, "0.0.0.0:9106", []string{"push.example.org"}
	s.cfg.TLSCert, s.cfg.TLSKey = s.certificate("tls", 90*24*time.Hour, "")
	r = s.run(doctor.Options{})
	r.want(t, "listener", "", checkup.OK, "API token")
	r.want(t, "api-tokens", "", checkup.OK, "2 API tokens")
	r.want(t, "tls", "", checkup.OK, "push.example.org", "2030-08-30")
	r.want(t, "allowed-hosts", "", checkup.OK, "push.example.org")
	r.want(t, "metrics", "", checkup.Warn, "0.0.0.0:9106", "without a token")

	s.cfg.TLSCert, s.cfg.TLSKey = s.certificate("soon", 3*24*time.Hour, "")
	s.run(doctor.Options{}).want(t, "tls", "", checkup.Warn, "expires on 2030-06-04")
	s.cfg.TLSCert, s.cfg.TLSKey = s.certificate("expired", -time.Minute, "")
	r = s.run(doctor.Options{})
	r.failed(t, "tls")
	r.want(t, "tls", "", checkup.Fail, "expired")
	s.cfg.TLSKey = s.cfg.Default.APNs.Key // not the certificate's key
	r = s.run(doctor.Options{})
	r.failed(t, "tls")
	r.want(t, "tls", "", checkup.Fail, "cannot serve HTTPS")
}

// An APNs certificate's environment, bundle id and expiry are held to the
// settings.
func TestAPNsCertificate(t *testing.T) {
	dev := asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	prod := asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	year := 365 * 24 * time.Hour
	for _, c := range []struct {
		name     string
		sandbox  bool
		validFor time.Duration
		uid      string
		ext      []asn1.ObjectIdentifier
		status   checkup.Status
		words    []string
	}{
		{"universal, production", false, year, "eu.siacs.Conversations", []asn1.ObjectIdentifier{dev, prod}, checkup.OK, []string{"valid until 2031"}},
		{"development, sandbox", true, year, "eu.siacs.Conversations", []asn1.ObjectIdentifier{dev}, checkup.OK, []string{"sandbox"}},
		{"voip topic", false, year, "eu.siacs.Conversations", []asn1.ObjectIdentifier{prod}, checkup.OK, nil},
		{"development, production", false, year, "eu.siacs.Conversations", []asn1.ObjectIdentifier{dev}, checkup.Fail, []string{"sandbox (development) only", "P2_APNS_SANDBOX"}},
		{"production, sandbox", true, year, "eu.siacs.Conversations", []asn1.ObjectIdentifier{prod}, checkup.Fail, []string{"production only", "P2_APNS_SANDBOX"}},
		{"another app", false, year, "im.quicksy.Quicksy", []asn1.ObjectIdentifier{prod}, checkup.Fail, []string{"im.quicksy.Quicksy", "P2_APNS_TOPIC"}},
		{"expired", false, -time.Minute, "eu.siacs.Conversations", []asn1.ObjectIdentifier{prod}, checkup.Fail, []string{"expired on 2030-06-01"}},
		{"expiring", false, 10 * 24 * time.Hour, "eu.siacs.Conversations", []asn1.ObjectIdentifier{prod}, checkup.Warn, []string{"expires on 2030-06-11"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSetup(t)
			s.cfg.Now = func() time.Time { return now }
			n := &s.cfg.Default.APNs
			n.Key, n.KeyID, n.TeamID, n.Sandbox = "", "", "", c.sandbox
			n.Cert, n.CertKey = s.certificate("apns", c.validFor, c.uid, c.ext...)
			if c.name == "voip topic" {
				n.Topic = "eu.siacs.Conversations.voip"
			}
			s.run(doctor.Options{}).want(t, "apns-environment", "default", c.status, c.words...)
		})
	}
}

// An endpoint override that contradicts P2_APNS_SANDBOX is pointed out.
func TestAPNsEndpointAgainstSandbox(t *testing.T) {
	s := newSetup(t)
	s.cfg.Default.APNs.Endpoint, s.cfg.Default.APNs.Sandbox = "https://api.push.apple.com", true
	r := s.run(doctor.Options{Timeout: time.Second})
	r.want(t, "apns-environment", "default", checkup.Warn, "P2_APNS_ENDPOINT", "production")
}

// The stateless mode has no database: its keys are checked, and --node
// opens the sealed node, whose pushes it keeps no history of.
func TestStateless(t *testing.T) {
	s := newSetup(t)
	key := strings.Repeat("s", 40)
	s.cfg.Mode, s.cfg.DatabaseURL, s.cfg.SecretKey = "stateless", "", key
	_, st, err := sealed.Open(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := st.Register(context.Background(), p2http.Registration{Service: p2http.FCM, Device: strings.Repeat("cd", 20),
		Domain: "example.org", Token: phoneToken, Node: "proposed"})
	if err != nil {
		t.Fatal(err)
	}
	r := s.run(doctor.Options{Node: reg.Node})
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "database", "", checkup.OK, "stateless")
	r.want(t, "server-key", "", checkup.OK, "P2_SECRET_KEY seals new nodes")
	r.want(t, "registration", "default", checkup.OK, "example.org")
	r.want(t, "push-history", "default", checkup.OK, "none kept: the stateless mode keeps no history", "p2http_pushes_total")
	r.want(t, "fcm-dry-run", "default", checkup.OK, "the registration's token")

	s.cfg.SecretKey = strings.Repeat("t", 40)
	r = s.run(doctor.Options{Node: reg.Node})
	r.failed(t, "registration")
	r.want(t, "registration", "", checkup.Fail, "P2_PREVIOUS_SECRET_KEYS")
}
