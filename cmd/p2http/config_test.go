package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/ratelimit"
)

// loadConfig is parseConfig with the usage written nowhere.
func loadConfig(args []string, getenv func(string) string) (*config, error) {
	return parseConfig(args, getenv, io.Discard)
}

// P2_LOG_LEVEL (-log-level): debug, info, warn or error in any case, info
// by default; anything else is refused, naming the variable.
func TestLogLevel(t *testing.T) {
	for _, c := range []struct {
		env  string
		args []string
		want slog.Level
	}{
		{"", nil, slog.LevelInfo},
		{"debug", nil, slog.LevelDebug},
		{"INFO", nil, slog.LevelInfo},
		{"Warn", nil, slog.LevelWarn},
		{"error", nil, slog.LevelError},
		{"warn", []string{"-log-level", "debug"}, slog.LevelDebug},
	} {
		cfg, err := loadConfig(c.args, envOf(map[string]string{"P2_LOG_LEVEL": c.env}))
		if err != nil {
			t.Fatalf("P2_LOG_LEVEL=%q %v: %v", c.env, c.args, err)
		}
		if cfg.LogLevel != c.want {
			t.Errorf("P2_LOG_LEVEL=%q %v: level %v, want %v", c.env, c.args, cfg.LogLevel, c.want)
		}
	}
	for _, bad := range []string{"verbose", "warning", "info+2", "0"} {
		_, err := loadConfig(nil, envOf(map[string]string{"P2_LOG_LEVEL": bad}))
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != "P2_LOG_LEVEL" {
			t.Errorf("P2_LOG_LEVEL=%q: error %v, want one naming P2_LOG_LEVEL", bad, err)
		}
	}
	// Given as a flag, the error names the flag.
	if _, err := loadConfig([]string{"-log-level", "loud"}, envOf(nil)); err == nil || !strings.Contains(err.Error(), "-log-level:") {
		t.Errorf("-log-level loud: error %v, want one naming -log-level", err)
	}

	// The logger of both formats holds to the level.
	for _, format := range []string{"text", "json"} {
		cfg, err := loadConfig(nil, envOf(map[string]string{"P2_LOG_LEVEL": "warn", "P2_LOG_FORMAT": format}))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		log := logger(cfg, &buf)
		log.Info("below the level")
		log.Warn("at the level")
		if out := buf.String(); strings.Contains(out, "below the level") || !strings.Contains(out, "at the level") {
			t.Errorf("%s logger at warn wrote:\n%s", format, out)
		}
	}
}

// The service logs no line per request at the default level, and one per
// request with P2_LOG_LEVEL=debug.
// P2_LIMIT_PUSH_FAILED (-limit-push-failed): 100:2000 by default, RATE:BURST
// or 0; anything else is refused, naming the variable.
func TestLimitPushFailed(t *testing.T) {
	for env, want := range map[string]ratelimit.Rate{
		"": {PerSecond: 100, Burst: 2000}, "5:50": {PerSecond: 5, Burst: 50}, "0": {},
	} {
		cfg, err := loadConfig(nil, envOf(map[string]string{"P2_LIMIT_PUSH_FAILED": env}))
		if err != nil {
			t.Fatalf("P2_LIMIT_PUSH_FAILED=%q: %v", env, err)
		}
		if cfg.LimitPushFailed != want {
			t.Errorf("P2_LIMIT_PUSH_FAILED=%q: %v, want %v", env, cfg.LimitPushFailed, want)
		}
	}
	cfg, err := loadConfig([]string{"-limit-push-failed", "1:2"}, envOf(map[string]string{"P2_LIMIT_PUSH_FAILED": "5:50"}))
	if err != nil || cfg.LimitPushFailed != (ratelimit.Rate{PerSecond: 1, Burst: 2}) {
		t.Errorf("-limit-push-failed 1:2: %v, %v", cfg, err)
	}
	_, err = loadConfig(nil, envOf(map[string]string{"P2_LIMIT_PUSH_FAILED": "many"}))
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "P2_LIMIT_PUSH_FAILED" {
		t.Errorf("P2_LIMIT_PUSH_FAILED=many: error %v, want one naming P2_LIMIT_PUSH_FAILED", err)
	}
}

func TestRequestLinesFollowTheLevel(t *testing.T) {
	for _, c := range []struct {
		level string
		lines int
	}{{"", 0}, {"debug", 1}} {
		url, logs := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_LOG_LEVEL": c.level,
			"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})
		res, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if n := strings.Count(logs.String(), "route=/healthz"); n != c.lines {
			t.Errorf("P2_LOG_LEVEL=%q: %d request lines, want %d:\n%s", c.level, n, c.lines, logs.String())
		}
	}
}

// P2_ALLOWED_HOSTS (-allowed-hosts) and the Host check it feeds: on a
// loopback listener without API tokens the loopback names, the listen host
// and P2_ALLOWED_HOSTS; elsewhere no check unless P2_ALLOWED_HOSTS is set.
func TestAllowedHostsSetting(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string // hostCheck, comma-separated; "" for no check
	}{
		{"default listener", nil, nil, "localhost,127.0.0.1,::1,127.0.0.1"},
		{"another loopback address", map[string]string{"P2_LISTEN": "127.0.0.2:8080"}, nil, "localhost,127.0.0.1,::1,127.0.0.2"},
		{"IPv6 loopback", map[string]string{"P2_LISTEN": "[::1]:8080"}, nil, "localhost,127.0.0.1,::1,::1"},
		{"with names", map[string]string{"P2_ALLOWED_HOSTS": " p2.internal, [::2] ,10.0.0.1,"}, nil,
			"localhost,127.0.0.1,::1,127.0.0.1,p2.internal,[::2],10.0.0.1"},
		{"flag", map[string]string{"P2_ALLOWED_HOSTS": "a.example"}, []string{"-allowed-hosts", "b.example"},
			"localhost,127.0.0.1,::1,127.0.0.1,b.example"},
		{"with API tokens", map[string]string{"P2_API_TOKENS": "0123456789abcdef"}, nil, ""},
		{"with API tokens and names", map[string]string{"P2_API_TOKENS": "0123456789abcdef", "P2_ALLOWED_HOSTS": "push.example.org"}, nil,
			"localhost,127.0.0.1,::1,127.0.0.1,push.example.org"},
		{"public listener", map[string]string{"P2_LISTEN": "0.0.0.0:8080", "P2_ALLOW_OPEN_REGISTRATION": "1"}, nil, ""},
		{"public listener and names", map[string]string{"P2_LISTEN": ":8080", "P2_ALLOW_OPEN_REGISTRATION": "1", "P2_ALLOWED_HOSTS": "push.example.org"}, nil,
			"localhost,127.0.0.1,::1,push.example.org"},
		{"private address and names", map[string]string{"P2_LISTEN": "10.0.0.11:8080", "P2_ALLOW_OPEN_REGISTRATION": "1", "P2_ALLOWED_HOSTS": "p2.lan"}, nil,
			"localhost,127.0.0.1,::1,10.0.0.11,p2.lan"},
	} {
		env := map[string]string{"P2_DATABASE_URL": "sqlite:p2.db"}
		for k, v := range c.env {
			env[k] = v
		}
		cfg, err := loadConfig(c.args, envOf(env))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Join(cfg.hostCheck(), ","); got != c.want {
			t.Errorf("%s: hosts %q, want %q", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"p2.internal:8080", "http://p2.internal", "*.example.org", "p2..internal", "exämple.org", "a b", "[::1]:80"} {
		_, err := loadConfig(nil, envOf(map[string]string{"P2_ALLOWED_HOSTS": "localhost," + bad}))
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != "P2_ALLOWED_HOSTS" {
			t.Errorf("P2_ALLOWED_HOSTS=%q: error %v, want one naming P2_ALLOWED_HOSTS", bad, err)
		}
	}
}

// The running service on its default loopback listener without tokens:
// 421 for a Host of another name (DNS rebinding), 200 for each loopback
// form with any port and for the names of P2_ALLOWED_HOSTS.
func TestDNSRebinding(t *testing.T) {
	base, _ := start(t, map[string]string{"P2_LISTEN": "127.0.0.1:0", "P2_DEV": "1", "P2_ALLOWED_HOSTS": "p2.internal",
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")})
	call := func(method, path, host, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Host = host
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	port := strings.TrimPrefix(base[strings.LastIndex(base, ":"):], ":")
	for _, host := range []string{"localhost", "localhost:" + port, "127.0.0.1:" + port, "127.0.0.1:1", "[::1]", "[::1]:" + port,
		"p2.internal", "P2.Internal:8080"} {
		if res := call("GET", "/v1/info", host, ""); res.StatusCode != http.StatusOK {
			t.Errorf("Host %q: %d", host, res.StatusCode)
		}
	}
	reg := `{"service":"fcm","account":"alice@example.org","device_id":"d1","token":"t1"}`
	for _, host := range []string{"evil.example", "evil.example:" + port, "p2.internal.evil.example", "127.0.0.2:" + port} {
		for _, c := range []struct{ method, path, body string }{{"GET", "/v1/info", ""}, {"GET", "/metrics", ""}, {"POST", "/v1/register", reg}} {
			res := call(c.method, c.path, host, c.body)
			if res.StatusCode != http.StatusMisdirectedRequest || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s with Host %q: %d %s, want 421 problem+json", c.method, c.path, host, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	}
	if res := call("POST", "/v1/register", "localhost:"+port, reg); res.StatusCode != http.StatusCreated {
		t.Fatalf("register through localhost: %d", res.StatusCode)
	}
}

// The README's configuration table lists every variable settings declares
// and no other, each with the default declared: they cannot drift.
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if err := settings(&config{}).CheckDoc(string(readme), "## Configuration"); err != nil {
		t.Errorf("README.md's configuration table and settings (config.go) differ:\n%v", err)
	}
}

// Every P2_ variable the code names — a string literal in a Go file of the
// module, tests aside — or the docs and packaging name is declared by
// settings, so that -h and the README list it. The test suites' own
// P2_TEST_ variables are not p2http's.
func TestEveryVariableIsDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range settings(&config{}).Vars {
		declared[v.Name] = true
	}
	check := func(name, where string) {
		if !strings.HasPrefix(name, "P2_TEST_") && !declared[name] {
			t.Errorf("%s, named in %s, is not declared in settings (config.go): add it there and to the README's table", name, where)
		}
	}
	inCode, err := envflag.SourceNames("../..", regexp.MustCompile(`^P2_[A-Z0-9_]+$`))
	if err != nil {
		t.Fatal(err)
	}
	for name, where := range inCode {
		check(name, strings.Join(where, ", "))
	}
	if len(inCode) < 10 {
		t.Fatalf("found only %d variables in the code: %v", len(inCode), inCode)
	}
	inDocs := regexp.MustCompile(`\bP2_[A-Z0-9_]+\*?`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return cmp.Or(err, filepath.SkipDir)
		}
		if ext := filepath.Ext(path); ext != ".md" && ext != ".env" {
			return nil
		}
		b, err := os.ReadFile(path)
		for _, name := range inDocs.FindAllString(string(b), -1) {
			if !strings.HasSuffix(name, "*") { // P2_APNS_* is a family
				check(name, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// p2http -h lists every variable settings declares: the flags, the secrets
// and GOMEMLIMIT.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, envOf(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, v := range settings(&config{}).Vars {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("-h does not list %s:\n%s", v.Name, out.String())
		}
	}
}
