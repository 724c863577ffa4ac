package api_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/relay"
)

// fuzzServer is the API over SQLite with dev-mode senders, for fuzzing.
func fuzzServer(f *testing.F) *api.Server {
	keys, _ := keyring.New(strings.Repeat("k", 32))
	store := dbtest.SQLite(f)
	log := discardLogger()
	senders := map[p2http.Service]p2http.Sender{
		p2http.FCM: &devlog.Sender{Service: p2http.FCM, Logger: log}, p2http.APNs: &devlog.Sender{Service: p2http.APNs, Logger: log},
	}
	rl := relay.New(relay.Config{JID: testJID, Store: store, Keyring: keys, Senders: senders, Logger: log})
	return api.New(api.Config{
		Registrar: rl, Pusher: rl, Describer: rl,
		ServiceStates: func() map[p2http.Service]string { return nil },
		Logger:        log,
	})
}

// checkProblem fails unless an answer of 400 or more is a problem document
// of a 4xx, with its own status and a p2http problem type.
func checkProblem(t *testing.T, path string, w *httptest.ResponseRecorder, input any) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s answered %d to %q: %s", path, w.Code, input, w.Body)
	}
	if w.Code < 400 {
		return
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s answered %d as %q, not a problem document", path, w.Code, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || !strings.HasPrefix(p.Type, api.ProblemTypePrefix) {
		t.Fatalf("%s answered %d with a broken problem document: %s", path, w.Code, w.Body)
	}
}

// FuzzRequestBodies throws arbitrary JSON bodies at every JSON operation:
// each answer must be a success or a problem+json 4xx, never a 5xx or a
// panic.
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
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/register", "/v1/unregister", "/v1/push"} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			srv.ServeHTTP(w, r)
			checkProblem(t, path, w, body)
		}
	})
}

// FuzzDecodeRequest throws arbitrary media types and bytes at the request
// decoder, through every operation that takes a body. Besides answering
// only successes and problem+json 4xx, it holds the decoder to its rules:
// what is accepted was sent as application/json, is valid UTF-8 and is one
// JSON object; what a browser may send without a preflight is 415; invalid
// UTF-8 sent as JSON is 400.
func FuzzDecodeRequest(f *testing.F) {
	reg := `{"service":"fcm","account":"alice@example.org","device_id":"a","token":"t"}`
	for _, seed := range []struct{ ctype, body string }{
		{"application/json", reg},
		{"application/json; charset=utf-8", `{"service":"fcm","account":"alice@example.org","device_id":"a"}`},
		{"Application/JSON;charset=\"UTF-8\"", `{"node":"eKxTS5n3bOe0","secret":"KK4+H5WMfpRG/2zCbuKq6wpX","domain":"example.org"}`},
		{"text/plain", reg},
		{"application/x-www-form-urlencoded", "service=fcm&account=a%40b&device_id=d&token=t"},
		{"multipart/form-data; boundary=x", "--x--"},
		{"", reg},
		{"application/json; charset=latin1", reg},
		{"application/json", `{"SERVICE":"fcm","account":"alice@example.org","device_id":"a","token":"t"}`},
		{"application/json", `{"service":"fcm","service":"apns","account":"alice@example.org","device_id":"a","token":"t"}`},
		{"application/json", "{\"service\":\"fcm\",\"account\":\"alice@example.org\",\"device_id\":\"x\xff\",\"token\":\"t\"}"},
		{"application/json", `{"service":"fcm","account":"alice@example.org","device_id":"x\ud800","token":"t"}`},
		{"application/json", "{\"node\":\"n\",\"secret\":\"s\",\"summary\":{\"x\xfe\":1}}"},
		{"application/json", `{"node":"` + strings.Repeat("A", 5000) + `","secret":"s"}`},
		{"application/json", `{"node":"n","secret":"s","summary":{"message_count":1e999}}`},
		{"application/json", " \t\r\n{\"node\":\"n\",\"secret\":\"s\"} "},
		{"application/json", `{"node":"n","secret":"s"}` + "\xff"},
	} {
		f.Add(seed.ctype, []byte(seed.body))
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		mt, params, ctErr := mime.ParseMediaType(ctype)
		for _, path := range []string{"/v1/register", "/v1/unregister", "/v1/push"} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			srv.ServeHTTP(w, r)
			checkProblem(t, path, w, body)
			switch {
			case w.Code < 300:
				if ctErr != nil || mt != "application/json" || len(params) > 1 || len(params) == 1 && !strings.EqualFold(params["charset"], "utf-8") {
					t.Fatalf("%s accepted a body sent as %q", path, ctype)
				}
				if !utf8.Valid(body) || !json.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
					t.Fatalf("%s accepted %q, which is not one JSON object in UTF-8", path, body)
				}
			case ctErr == nil && (mt == "text/plain" || mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"):
				if w.Code != http.StatusUnsupportedMediaType {
					t.Fatalf("%s answered %d to a %s body, want 415", path, w.Code, mt)
				}
			case w.Code != http.StatusUnsupportedMediaType && !utf8.Valid(body) && len(body) <= api.DefaultMaxBodyBytes:
				if w.Code != http.StatusBadRequest {
					t.Fatalf("%s answered %d to invalid UTF-8, want 400: %s", path, w.Code, w.Body)
				}
			}
		}
	})
}
