package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/p2http/p2http/internal/testutil"
)

// P2XMPP_METRICS answers HEAD /metrics as GET, without the body.
func TestMetricsAnswerHead(t *testing.T) {
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := newMetrics("test").serve(ctx, addr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	do := func(method string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+"/metrics", nil)
		req.Header.Set("Accept-Encoding", "identity")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	get, body := do("GET")
	head, headBody := do("HEAD")
	if get.StatusCode != 200 || len(body) == 0 {
		t.Fatalf("GET /metrics: %d, %d bytes", get.StatusCode, len(body))
	}
	if head.StatusCode != 200 || len(headBody) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
		t.Fatalf("HEAD /metrics: %d, %q, %d bytes; GET: %q", head.StatusCode, head.Header.Get("Content-Type"), len(headBody), get.Header.Get("Content-Type"))
	}
}
