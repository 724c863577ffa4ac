// Package logconfig turns the log settings that p2http and p2xmpp share
// (a format and a level, from their environment or flags) into a logger.
package logconfig

import (
	"io"
	"log/slog"
	"strings"
)

// ParseLevel reads a log level: debug, info, warn or error, in any case.
// Unlike slog.Level's UnmarshalText it refuses offsets such as "info+2".
func ParseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// New returns a logger writing to w at level: JSON lines when format is
// "json", else slog's text format.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
