package logconfig_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/p2http/p2http/internal/logconfig"
)

func TestWriteExitError(t *testing.T) {
	err := errors.New(`configuration: P2_LISTEN: "x" is not host:port`)
	var buf bytes.Buffer
	logconfig.WriteExitError(&buf, "p2http", "json", err)
	var rec map[string]any
	if e := json.Unmarshal(buf.Bytes(), &rec); e != nil || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("json: not one JSON line: %q (%v)", buf.String(), e)
	}
	if rec["level"] != "ERROR" || rec["msg"] != "p2http failed" || rec["err"] != err.Error() || rec["time"] == nil {
		t.Fatalf("json: %v", rec)
	}
	buf.Reset()
	logconfig.WriteExitError(&buf, "p2http", "text", err)
	if want := "p2http: " + err.Error() + "\n"; buf.String() != want {
		t.Fatalf("text: %q, want %q", buf.String(), want)
	}
}
