package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/ratelimit"
)

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
	if _, err := loadConfig([]string{"-log-level", "loud"}, envOf(nil)); err == nil || !strings.Contains(err.Error(), "P2_LOG_LEVEL") {
		t.Errorf("-log-level loud: error %v, want one naming P2_LOG_LEVEL", err)
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
