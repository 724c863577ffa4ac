package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/fake"
)

// writeFile writes data into dir/name and returns the path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// P2_CONFIG declares a second app with its own FCM project; the default app
// keeps its environment. Pushes go out through each node's own project.
func TestConfigFileApps(t *testing.T) {
	dir := t.TempDir()
	def, quicksy := fake.NewFCMProject("p2http-default"), fake.NewFCMProject("p2http-quicksy")
	defer def.Close()
	defer quicksy.Close()
	ca := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: def.Server.Certificate().Raw})))
	file := writeFile(t, dir, "p2http.yaml", fmt.Sprintf(`# a second app
apps:
  quicksy:
    fcm:
      credentials: %s
      endpoint: %s
`, writeFile(t, dir, "quicksy.json", string(quicksy.Credentials)), quicksy.Endpoint()))
	// A process of its own: SSL_CERT_FILE is read once per process.
	bin := startBinary(t, buildP2HTTP(t), map[string]string{"P2_DEV": "0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_JID": "push.example.org", "P2_CONFIG": file, "SSL_CERT_FILE": ca,
		"P2_FCM_CREDENTIALS": writeFile(t, dir, "default.json", string(def.Credentials)), "P2_FCM_ENDPOINT": def.Endpoint()})
	url, logs := bin.base, bin.logs

	info := getJSON(t, url+"/v1/info")
	apps, _ := info["apps"].([]any)
	if len(apps) != 1 || apps[0].(map[string]any)["jid"] != "quicksy@push.example.org" {
		t.Fatalf("info %v", info)
	}
	d := postJSON(t, url+"/v1/register", `{"service":"fcm","account":"alice@example.org","device_id":"d","token":"default-token"}`)
	q := postJSON(t, url+"/v1/register", `{"app":"quicksy","service":"fcm","account":"alice@example.org","device_id":"d","token":"quicksy-token"}`)
	if d["jid"] != "push.example.org" || q["jid"] != "quicksy@push.example.org" {
		t.Fatalf("jids %v %v", d["jid"], q["jid"])
	}
	for _, r := range []map[string]any{d, q} {
		postJSON(t, url+"/v1/push", fmt.Sprintf(`{"node":%q,"secret":%q}`, r["node"], r["secret"]))
	}
	if got := def.Tokens(); len(got) != 1 || got[0] != "default-token" {
		t.Fatalf("default project got %q", got)
	}
	if got := quicksy.Tokens(); len(got) != 1 || got[0] != "quicksy-token" {
		t.Fatalf("quicksy project got %q", got)
	}
	if !strings.Contains(logs.String(), `"apps":1`) {
		t.Fatalf("start line does not count the apps:\n%s", logs)
	}
}

// Every mistake in P2_CONFIG is refused at start, naming the file and the
// setting.
func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ file, want string }{
		{"apps:\n  quicksy:\n    fcm:\n      credential: /x.json\n", "field credential not found"},
		{"apps:\n  default:\n    fcm:\n      credentials: /x.json\n", "apps.default"},
		{"apps:\n  Quick Sy:\n    fcm:\n      credentials: /x.json\n", "app name"},
		{"apps:\n  quicksy: {}\n", "neither fcm nor apns"},
		{"apps:\n  quicksy:\n    fcm:\n      credentials: /nonexistent.json\n", "P2_CONFIG apps.quicksy.fcm.credentials"},
		{"apps:\n  quicksy:\n    fcm:\n      credentials: /x.json\n      endpoint: ftp://x\n", "P2_CONFIG apps.quicksy.fcm.endpoint"},
		{"apps:\n  quicksy:\n    apns:\n      key: /k.p8\n      key_id: K\n      team_id: T\n", "P2_CONFIG apps.quicksy.apns.topic"},
		{"apps: [1, 2", "P2_CONFIG"},
	} {
		env := map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"), "P2_CONFIG": writeFile(t, dir, "c.yaml", c.file)}
		err := run(context.Background(), nil, envOf(env), &bytes.Buffer{}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "P2_CONFIG") {
			t.Errorf("file %q: error %v, want one naming P2_CONFIG and %q", c.file, err, c.want)
		}
	}
	env := map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"), "P2_CONFIG": filepath.Join(dir, "missing.yaml")}
	if err := run(context.Background(), nil, envOf(env), &bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "P2_CONFIG") {
		t.Errorf("missing file: %v", err)
	}
}
