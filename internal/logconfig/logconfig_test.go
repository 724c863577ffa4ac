package logconfig_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/logconfig"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, " Warn ": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := logconfig.ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "verbose", "warning", "info+2", "0"} {
		if _, err := logconfig.ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) accepted", in)
		} else if want := `is not a log level: use debug, info, warn or error`; !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLevel(%q): %v, want it to say %q", in, err, want)
		}
	}
}

func TestNew(t *testing.T) {
	for format, want := range map[string]string{"json": `"msg":"shown"`, "text": "msg=shown"} {
		var buf bytes.Buffer
		log := logconfig.New(&buf, format, slog.LevelWarn)
		log.Info("hidden")
		log.Warn("shown")
		if out := buf.String(); !strings.Contains(out, want) || strings.Contains(out, "hidden") {
			t.Errorf("format %s at warn wrote %q", format, out)
		}
	}
}
