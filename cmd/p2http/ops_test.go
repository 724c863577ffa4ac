package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
