package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// BenchmarkPushHandler measures the whole push path in process: decoding,
// the relay, the store look-up, the secret check and an FCM send to the fake
// over HTTP/2 and TLS. The HTTP client side is left out.
func BenchmarkPushHandler(b *testing.B) {
	for _, c := range []struct {
		name  string
		store func(testing.TB) *db.DB
	}{{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb) }}, {"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb) }}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, c.store(b), options{logLevel: slog.LevelWarn, pushLogEvery: time.Second})
			const n = 1000
			bodies := make([][]byte, n)
			for i := range n {
				r := e.do("POST", "/v1/register", map[string]any{"service": "fcm", "account": fmt.Sprintf("u%d@example.org", i), "device_id": "d", "token": fmt.Sprintf("tok-%d", i)})
				bodies[i], _ = json.Marshal(map[string]any{"node": r.Str("node"), "secret": r.Str("secret"), "domain": "example.org", "important": true})
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.SetParallelism(32) // pushes wait on FCM and the database: keep many in flight
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[next.Add(1)%n]
					w := httptest.NewRecorder()
					r := httptest.NewRequest(http.MethodPost, "/v1/push", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					e.Handler.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("push: %d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
