package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/relay"
)

// FuzzRequestBodies throws arbitrary bodies at every JSON operation: each
// answer must be a success or a problem+json 4xx, never a 5xx or a panic.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"service":"fcm","account":"alice@example.org","device_id":"a","token":"t"}`,
		`{"service":"apns","account":"Ä@Example.ORG","device_id":"\u0000","token":"0a"}`,
		`{"node":"eKxTS5n3bOe0","secret":"KK4+H5WMfpRG/2zCbuKq6wpX","domain":"example.org","important":true}`,
		`{"node":"a","secret":"b","summary":{"message_count":1,"last_message_body":"x"}}`,
		`{"node":"a","secret":"b","summary":null}`, `[]`, `null`, `{"service":1}`, `{`, ``, `{"a":1}{}`,
		`{"service":"fcm","account":"a@b/c","device_id":"d","token":"` + strings.Repeat("x", 5000) + `"}`,
	} {
		f.Add(seed)
	}
	keys, _ := keyring.New(strings.Repeat("k", 32))
	store := dbtest.SQLite(f)
	log := discardLogger()
	senders := map[p2http.Service]p2http.Sender{
		p2http.FCM: &devlog.Sender{Service: p2http.FCM, Logger: log}, p2http.APNs: &devlog.Sender{Service: p2http.APNs, Logger: log},
	}
	srv := api.New(api.Config{
		Relay:         relay.New(relay.Config{JID: testJID, Store: store, Keyring: keys, Senders: senders, Logger: log}),
		Store:         store,
		ServiceStates: func() map[p2http.Service]string { return nil },
		Logger:        log,
	})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/register", "/v1/unregister", "/v1/push"} {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
			if w.Code >= 500 {
				t.Fatalf("%s answered %d to %q: %s", path, w.Code, body, w.Body)
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s answered %d without a problem document", path, w.Code)
			}
		}
	})
}
