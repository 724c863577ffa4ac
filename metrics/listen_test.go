package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/metrics"
)

// The listener of P2_METRICS answers HEAD /metrics as GET, without the
// body (http.ServeMux's GET patterns match HEAD), and nothing else.
func TestListenAnswersHead(t *testing.T) {
	addr := testutil.FreeAddr(t)
	stop, err := metrics.Listen(addr, metrics.New(metrics.Config{Version: "test", Registrations: &counter{}}).Handler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		req.Header.Set("Accept-Encoding", "identity")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	get, body := do("GET", "/metrics")
	head, headBody := do("HEAD", "/metrics")
	if get.StatusCode != 200 || len(body) == 0 {
		t.Fatalf("GET /metrics: %d, %d bytes", get.StatusCode, len(body))
	}
	if head.StatusCode != 200 || len(headBody) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
		t.Fatalf("HEAD /metrics: %d, %q, %d bytes; GET: %q", head.StatusCode, head.Header.Get("Content-Type"), len(headBody), get.Header.Get("Content-Type"))
	}
	if res, _ := do("POST", "/metrics"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %d", res.StatusCode)
	}
	if res, _ := do("HEAD", "/other"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD /other: %d", res.StatusCode)
	}
}
