package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/p2http/p2http/internal/testutil"
)

// opsToken is an API token of the accepted length.
const opsToken = "ops-test-token-0123456789"

// refused runs p2http with env and returns the error it stopped with; it
// fails the test when p2http starts instead.
func refused(t *testing.T, env map[string]string, logs io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), logs, ready) }()
	select {
	case err := <-done:
		return err
	case <-ready:
		cancel()
		<-done
		t.Fatalf("p2http started with %v", env)
	}
	return nil
}

// getWith GETs url with the bearer token, when there is one, and returns
// the status and body.
func getWith(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// An API token shorter than 16 characters is refused at start-up, with an
// error naming P2_API_TOKENS and not the token, before anything is opened.
func TestShortAPITokenRefused(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "p2.db")
	short := "only-15-chars.."
	err := refused(t, map[string]string{"P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": "sqlite:" + dbPath, "P2_API_TOKENS": opsToken + "," + short}, io.Discard)
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_API_TOKENS" {
		t.Fatalf("a 15-character token: %v, want an error naming P2_API_TOKENS", err)
	}
	if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), opsToken) {
		t.Fatalf("the error repeats a token: %v", err)
	}
	if _, err := os.Stat(dbPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start created the database: %v", err)
	}
	// Sixteen characters are enough.
	url, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + dbPath,
		"P2_API_TOKENS": short + "."})
	if status, _ := getWith(t, url+"/v1/registration?node=x", short+"."); status == http.StatusUnauthorized {
		t.Fatalf("look-up with a 16-character token: %d", status)
	}
}

// P2_METRICS serves /metrics on a listener of its own, without a token, and
// the main listener no longer serves it.
func TestMetricsListener(t *testing.T) {
	metricsAddr := testutil.FreeAddr(t)
	url, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_API_TOKENS": opsToken,
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db"), "P2_METRICS": metricsAddr})
	getJSON(t, url+"/healthz")
	status, body := getWith(t, "http://"+metricsAddr+"/metrics", "")
	if status != http.StatusOK || !strings.Contains(body, `p2http_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Fatalf("P2_METRICS listener: %d\n%s", status, body)
	}
	for _, token := range []string{"", opsToken} {
		if status, _ := getWith(t, url+"/metrics", token); status != http.StatusNotFound {
			t.Errorf("/metrics on the main listener (token %v): %d, want 404", token != "", status)
		}
	}
	if status, _ := getWith(t, "http://"+metricsAddr+"/v1/info", ""); status != http.StatusNotFound {
		t.Errorf("the metrics listener serves the API: %d", status)
	}
}

// P2_METRICS must be host:port, and one it cannot listen on stops start-up
// naming it.
func TestMetricsListenerRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"9107", busy.Addr().String()} {
		err := refused(t, map[string]string{"P2_LISTEN": "127.0.0.1:0",
			"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db"), "P2_METRICS": addr}, io.Discard)
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != "P2_METRICS" {
			t.Errorf("P2_METRICS=%s: %v, want an error naming P2_METRICS", addr, err)
		}
	}
}

// Without P2_METRICS, /metrics on the main listener needs a token when
// P2_API_TOKENS is set, and none when it is not.
func TestMetricsNeedATokenWhenTokensAreSet(t *testing.T) {
	url, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_API_TOKENS": opsToken,
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {opsToken, http.StatusOK}} {
		status, body := getWith(t, url+"/metrics", c.token)
		if status != c.want {
			t.Errorf("/metrics with token %q: %d, want %d", c.token, status, c.want)
		}
		if status == http.StatusOK != strings.Contains(body, "p2http_http_requests_total") {
			t.Errorf("/metrics with token %q: %d, and the metrics are in the body: %v", c.token, status, status != http.StatusOK)
		}
	}
	open, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0",
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})
	if status, _ := getWith(t, open+"/metrics", ""); status != http.StatusOK {
		t.Errorf("/metrics without P2_API_TOKENS: %d, want 200", status)
	}
}

// A database whose key file went missing (restored without it, say) is
// refused, and the refusal leaves no new key file behind: the next backup
// must not pick up a key that never matched the database.
func TestRefusedStartLeavesNoKeyFile(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "p2.db")
	env := map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + dbPath}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), &bytes.Buffer{}, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("first start: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dbPath + ".key"); err != nil {
		t.Fatalf("the first start made no key file: %v", err)
	}

	logs := &bytes.Buffer{}
	err := refused(t, env, logs)
	if _, err := os.Stat(dbPath + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start left a key file: %v\n%s", err, logs)
	}
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_SECRET_KEY" || !strings.Contains(err.Error(), dbPath+".key") {
		t.Fatalf("start without the key file: %v, want an error naming P2_SECRET_KEY and the key file", err)
	}
	if strings.Contains(logs.String(), "generated a new server key") {
		t.Fatalf("the refused start says it generated a key:\n%s", logs)
	}
}

// The SQLite database and its -wal and -shm files are created 0600, even
// under a umask of 022 (outside systemd, whose unit sets UMask=0077).
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dbPath := filepath.Join(t.TempDir(), "p2.db")
	url, _ := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + dbPath})
	postJSON(t, url+"/v1/register", `{"service":"fcm","account":"alice@example.org","device_id":"dev1","token":"tok-123456"}`)
	for _, name := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", dbPath + ".key"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(name), perm)
		}
	}
}
