// Package logconfig turns the log settings that p2http and p2xmpp share
// (a format and a level, from their environment or flags) into a logger.
package logconfig

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel reads a log level: debug, info, warn or error, in any case.
// Unlike slog.Level's UnmarshalText it refuses offsets such as "info+2";
// the error says what is accepted, for the caller to prefix with the
// variable's name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level: use debug, info, warn or error", s)
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

// WriteExitError writes err, the error that ends the command prog, to w:
// with format "json" as a JSON log line at level ERROR ({"msg":"PROG
// failed","err":…}), like the lines logged before it, so that a log
// collector reading JSON reads it too; else as the plain line "PROG: err".
func WriteExitError(w io.Writer, prog, format string, err error) {
	if format == "json" {
		New(w, format, slog.LevelError).Error(prog+" failed", "err", err.Error())
		return
	}
	fmt.Fprintf(w, "%s: %v\n", prog, err)
}
