package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	statelessKey  = "stateless-server-key-0123456789abcdef"
	statelessKey2 = "stateless-server-key-the-next-one-0123"
)

// pushStatus posts a push and returns the status.
func pushStatus(t *testing.T, base, node, secret string) int {
	t.Helper()
	res, err := http.Post(base+"/v1/push", "application/json",
		strings.NewReader(fmt.Sprintf(`{"node":%q,"secret":%q,"domain":"example.org"}`, node, secret)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The stateless mode answers registrations with sealed nodes, pushes with
// them, and writes no file: no database, no key file, in the working
// directory or anywhere it was pointed at.
func TestStatelessMode(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	base, logs := start(t, map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey,
		"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0"})

	ready := getJSON(t, base+"/readyz")
	if ready["status"] != "ready" || ready["database"] != "none" {
		t.Fatalf("readyz %v", ready)
	}
	reg := postJSON(t, base+"/v1/register", `{"service":"fcm","account":"alice@example.org","device_id":"d1","token":"tok-1:APA91bXYZ"}`)
	node, secret := reg["node"].(string), reg["secret"].(string)
	if len(node) <= 12 || len(secret) != 24 {
		t.Fatalf("register %v", reg)
	}
	if code := pushStatus(t, base, node, secret); code != 200 {
		t.Fatalf("push: %d", code)
	}
	if code := pushStatus(t, base, node, strings.Repeat("A", 24)); code != 403 {
		t.Fatalf("push with a wrong secret: %d", code)
	}
	// A node sealed for one domain is refused from another.
	res, err := http.Post(base+"/v1/push", "application/json",
		strings.NewReader(fmt.Sprintf(`{"node":%q,"secret":%q,"domain":"example.net"}`, node, secret)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("push from another domain: %d", res.StatusCode)
	}
	// Nothing is kept, so unregistering succeeds at once.
	req, _ := http.NewRequest("POST", base+"/v1/unregister", strings.NewReader(`{"service":"fcm","account":"alice@example.org","device_id":"d1"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("unregister: %d", res.StatusCode)
	}
	info := getJSON(t, base+"/v1/registration?node="+url.QueryEscape(node))
	if info["service"] != "fcm" || info["domain"] != "example.org" || info["app"] != "default" ||
		info["push_history"] != "none" || info["push_count"] != nil || info["last_push_at"] != nil {
		t.Fatalf("registration %v", info)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("the stateless mode wrote %v", entries)
	}
	for _, leak := range []string{"tok-1", secret, "alice@"} {
		if strings.Contains(logs.String(), leak) {
			t.Fatalf("log holds %q", leak)
		}
	}
	if !strings.Contains(logs.String(), "mode=stateless") {
		t.Fatalf("the start line does not name the mode:\n%s", logs)
	}
}

// Rotating the key: nodes of P2_PREVIOUS_SECRET_KEYS keep working, new
// nodes are sealed with P2_SECRET_KEY, and a key removed from the list
// retires its nodes (404: the XMPP server drops them).
func TestStatelessKeyRotation(t *testing.T) {
	t.Chdir(t.TempDir())
	env := map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey, "P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0"}
	register := func(base string) (string, string) {
		reg := postJSON(t, base+"/v1/register", `{"service":"apns","account":"bob@example.org","device_id":"d","token":"abcdef0123"}`)
		return reg["node"].(string), reg["secret"].(string)
	}
	runFor := func(env map[string]string, f func(base string)) {
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() { done <- run(ctx, nil, envOf(env), &bytes.Buffer{}, ready) }()
		select {
		case addr := <-ready:
			f("http://" + addr)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		case err := <-done:
			cancel()
			t.Fatalf("p2http did not start: %v", err)
		}
	}
	var oldNode, oldSecret string
	runFor(env, func(base string) { oldNode, oldSecret = register(base) })

	env["P2_SECRET_KEY"], env["P2_PREVIOUS_SECRET_KEYS"] = statelessKey2, statelessKey
	runFor(env, func(base string) {
		if code := pushStatus(t, base, oldNode, oldSecret); code != 200 {
			t.Fatalf("push with a node of the previous key: %d", code)
		}
		newNode, newSecret := register(base)
		if newNode == oldNode || newSecret == oldSecret {
			t.Fatal("the new key sealed the same node")
		}
		if code := pushStatus(t, base, newNode, newSecret); code != 200 {
			t.Fatalf("push with a node of the new key: %d", code)
		}
	})

	delete(env, "P2_PREVIOUS_SECRET_KEYS")
	runFor(env, func(base string) {
		if code := pushStatus(t, base, oldNode, oldSecret); code != 404 {
			t.Fatalf("push with a node of a retired key: %d, want 404", code)
		}
	})
}

// The admin commands and the retention setting have nothing to work on in
// the stateless mode: refused, and no database file appears.
func TestStatelessAdminCommands(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey}
	for _, args := range [][]string{{"stats"}, {"purge", "--not-seen-for", "90d"}, {"migrate"}} {
		err := dispatch(context.Background(), args, envOf(env), &bytes.Buffer{}, &bytes.Buffer{})
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != "P2_MODE" {
			t.Errorf("%v: %v, want a refusal naming P2_MODE", args, err)
		}
	}
	env["P2_RETENTION"] = "90d"
	err := dispatch(context.Background(), nil, envOf(env), &bytes.Buffer{}, &bytes.Buffer{})
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_RETENTION" {
		t.Errorf("serve with P2_RETENTION: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

// Stateless configuration mistakes are refused, naming the variable.
func TestStatelessConfigErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"P2_MODE": "stateless"}, "P2_SECRET_KEY"},
		{map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey, "P2_DATABASE_URL": "sqlite:x.db"}, "P2_DATABASE_URL"},
		{map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey, "P2_PREVIOUS_SECRET_KEYS": "short"}, "P2_PREVIOUS_SECRET_KEYS"},
		{map[string]string{"P2_MODE": "stateless", "P2_SECRET_KEY": statelessKey, "P2_PREVIOUS_SECRET_KEYS": statelessKey}, "P2_PREVIOUS_SECRET_KEYS"},
		{map[string]string{"P2_SECRET_KEY": statelessKey, "P2_PREVIOUS_SECRET_KEYS": statelessKey2,
			"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")}, "P2_PREVIOUS_SECRET_KEYS"},
		{map[string]string{"P2_MODE": "proxy"}, "P2_MODE"},
	} {
		err := dispatch(context.Background(), nil, envOf(c.env), &bytes.Buffer{}, &bytes.Buffer{})
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != c.name {
			t.Errorf("env %v: error %v, want one naming %s", c.env, err, c.name)
		}
	}
}
