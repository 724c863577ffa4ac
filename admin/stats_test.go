package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/db/dbtest"
)

// stats breaks the registrations of each app down by service, in text and
// in JSON.
func TestStatsPerAppAndService(t *testing.T) {
	ctx := context.Background()
	store := dbtest.SQLite(t)
	for i, r := range []struct {
		app     p2http.App
		service p2http.Service
	}{{"", p2http.FCM}, {"", p2http.FCM}, {"", p2http.APNs}, {"quicksy", p2http.APNs}} {
		token := "fcm-token"
		if r.service == p2http.APNs {
			token = "abcdef"
		}
		reg := p2http.Registration{App: r.app.OrDefault(), Service: r.service, Device: p2http.DeviceHash("a@example.org", string(rune('a'+i))),
			Domain: "example.org", Token: token, Node: p2http.NewNode(), SecretKind: p2http.SecretDerived}
		if _, _, err := store.Register(ctx, reg); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := admin.Stats(ctx, store, admin.StatsOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"by app                      total        fcm       apns\n" +
		"  default                       3          2          1\n" +
		"  quicksy                       1          0          1\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("stats lack\n%s\nin\n%s", want, out.String())
	}
	out.Reset()
	if err := admin.Stats(ctx, store, admin.StatsOptions{JSON: true}, &out); err != nil {
		t.Fatal(err)
	}
	var st struct {
		ByAppService map[string]map[string]int64 `json:"by_app_service"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if d, q := st.ByAppService["default"], st.ByAppService["quicksy"]; d["fcm"] != 2 || d["apns"] != 1 || q["fcm"] != 0 || q["apns"] != 1 {
		t.Errorf("stats --json by_app_service: %v", st.ByAppService)
	}
}
