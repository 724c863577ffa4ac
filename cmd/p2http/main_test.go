package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/internal/testutil"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// start runs p2http with env until the test ends and returns its base URL.
func start(t *testing.T, env map[string]string) (string, *testutil.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.LogBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), logs, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run ended with %v", err)
			}
		})
		return "http://" + addr, logs
	case err := <-done:
		cancel()
		t.Fatalf("p2http did not start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("p2http did not start in time")
	}
	return "", nil
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	json.NewDecoder(res.Body).Decode(&v)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, v)
	}
	return v
}

func postJSON(t *testing.T, url, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	json.NewDecoder(res.Body).Decode(&v)
	if res.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %v", url, res.StatusCode, v)
	}
	return v
}

// The README's walk-through: dev mode on SQLite, register, push, and the
// push shows in the log instead of reaching a real service.
func TestDevModeWalkThrough(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "p2.db")
	url, logs := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + dbPath})

	if st, err := os.Stat(dbPath + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file beside the database: %v", err)
	}
	ready := getJSON(t, url+"/readyz")
	if ready["dev_mode"] != true || ready["services"].(map[string]any)["fcm"] != "dev-log" {
		t.Fatalf("readyz does not show dev mode: %v", ready)
	}
	info := getJSON(t, url+"/v1/info")
	if info["jid"] != "push.localhost" || len(info["services"].([]any)) != 2 {
		t.Fatalf("info %v", info)
	}
	reg := postJSON(t, url+"/v1/register", `{"service":"fcm","account":"alice@example.org","device_id":"dev1","token":"tok-123456"}`)
	push := postJSON(t, url+"/v1/push", `{"node":"`+reg["node"].(string)+`","secret":"`+reg["secret"].(string)+`","important":true}`)
	if push["delivered"] != true || push["priority"] != "high" {
		t.Fatalf("push %v", push)
	}
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	mb.ReadFrom(res.Body)
	res.Body.Close()
	for _, want := range []string{`p2http_pushes_total{app="default",outcome="delivered",reason="",service="fcm"} 1`,
		`p2http_http_requests_total{method="POST",route="/v1/push",status="200"} 1`, `p2http_registrations{service="fcm"} 1`} {
		if !strings.Contains(mb.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "DEV MODE: push not sent") || !strings.Contains(out, "DEV MODE: pushes for unconfigured services") {
		t.Fatalf("dev mode not announced or push not logged:\n%s", out)
	}
	for _, secret := range []string{"tok-123456", reg["secret"].(string), "alice@"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log holds %q", secret)
		}
	}
}

// Without dev mode an unconfigured service is refused.
func TestNoServicesWithoutDevMode(t *testing.T) {
	url, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})
	res, err := http.Post(url+"/v1/register", "application/json",
		strings.NewReader(`{"service":"fcm","account":"alice@example.org","device_id":"dev1","token":"tok"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("register for an unconfigured service: %d", res.StatusCode)
	}
}

func TestInvalidConfigurationNamesTheVariable(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "p2.db")
	for _, c := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"P2_LISTEN": "nonsense"}, "P2_LISTEN"},
		{map[string]string{"P2_JID": "user@push.example.org"}, "P2_JID"},
		{map[string]string{"P2_DATABASE_URL": "mysql://x"}, "P2_DATABASE_URL"},
		{map[string]string{"P2_DATABASE_URL": "postgres://127.0.0.1/test"}, "P2_SECRET_KEY"},
		{map[string]string{"P2_SECRET_KEY": "short"}, "P2_SECRET_KEY"},
		{map[string]string{"P2_DEV": "maybe"}, "P2_DEV"},
		{map[string]string{"P2_FCM_CREDENTIALS": "/nonexistent/creds.json"}, "P2_FCM_CREDENTIALS"},
		{map[string]string{"P2_FCM_ENDPOINT": "ftp://x"}, "P2_FCM_ENDPOINT"},
		{map[string]string{"P2_APNS_KEY": "/k.p8", "P2_APNS_TEAM_ID": "T"}, "P2_APNS_KEY_ID"},
		{map[string]string{"P2_APNS_KEY": "/k.p8", "P2_APNS_TEAM_ID": "T", "P2_APNS_KEY_ID": "K"}, "P2_APNS_TOPIC"},
		{map[string]string{"P2_APNS_CERT": "/c.pem"}, "P2_APNS_CERT_KEY"},
	} {
		if _, ok := c.env["P2_DATABASE_URL"]; !ok {
			c.env["P2_DATABASE_URL"] = dbURL
		}
		err := run(context.Background(), nil, envOf(c.env), &bytes.Buffer{}, nil)
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("env %v: error %v does not name %s", c.env, err, c.name)
		}
	}
}

// A database first used with one key refuses to start with another.
func TestChangedKeyRefused(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_SECRET_KEY": strings.Repeat("k", 32)}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), &bytes.Buffer{}, ready) }()
	<-ready
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	env["P2_SECRET_KEY"] = strings.Repeat("j", 32)
	err := run(context.Background(), nil, envOf(env), &bytes.Buffer{}, nil)
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_SECRET_KEY" {
		t.Fatalf("start with another key: %v", err)
	}
}

// PostgreSQL works as the store, with the key from the environment.
func TestPostgres(t *testing.T) {
	url, _ := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": dbtest.PostgresSchemaURL(t), "P2_SECRET_KEY": strings.Repeat("p", 40)})
	reg := postJSON(t, url+"/v1/register", `{"service":"apns","account":"bob@example.org","device_id":"d","token":"abcdef"}`)
	if len(reg["node"].(string)) != 12 {
		t.Fatalf("register %v", reg)
	}
	if r := getJSON(t, url+"/readyz"); r["status"] != "ready" {
		t.Fatalf("readyz %v", r)
	}
}

func TestFlagOverridesEnvironment(t *testing.T) {
	cfg, err := loadConfig([]string{"-listen", "127.0.0.1:9999", "-jid", "push.example.net"},
		envOf(map[string]string{"P2_LISTEN": "127.0.0.1:1234", "P2_API_TOKENS": " token-a-0123456789, token-b-0123456789 ,,"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.JID != "push.example.net" || strings.Join(cfg.APITokens, "|") != "token-a-0123456789|token-b-0123456789" {
		t.Fatalf("config %+v", cfg)
	}
}

// A listener other machines can reach needs API tokens, or an explicit
// opt-in to open registration.
func TestOpenRegistrationNeedsOptIn(t *testing.T) {
	base := map[string]string{"P2_LISTEN": "0.0.0.0:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")}
	err := run(context.Background(), nil, envOf(base), &bytes.Buffer{}, nil)
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_LISTEN" || !strings.Contains(err.Error(), "P2_API_TOKENS") {
		t.Fatalf("open listener without tokens: %v", err)
	}
	for _, extra := range []map[string]string{{"P2_ALLOW_OPEN_REGISTRATION": "1"}, {"P2_API_TOKENS": "token-1-0123456789"}} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		url, _ := start(t, env)
		getJSON(t, strings.Replace(url, "0.0.0.0", "127.0.0.1", 1)+"/healthz")
	}
}

// P2_TLS_CERT and P2_TLS_KEY make p2http serve HTTPS.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	url, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_TLS_CERT": filepath.Join(dir, "cert.pem"), "P2_TLS_KEY": filepath.Join(dir, "key.pem")})
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := c.Get(strings.Replace(url, "http://", "https://", 1) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("HTTPS healthz: %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
}
