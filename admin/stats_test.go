package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/db"
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

// stats --node shows one registration's history as the database has it,
// in text and JSON, without its token or node; an unknown node is an error
// that does not repeat it.
func TestStatsNode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		reg := p2http.Registration{Service: p2http.FCM, Device: p2http.DeviceHash("alice@example.org", "phone"),
			Domain: "example.org", Token: "fcm-token-secretive", Node: "eKx+S5n3/Oe0"}
		if _, _, err := d.Register(ctx, reg); err != nil {
			t.Fatal(err)
		}
		run := func(o admin.StatsOptions) string {
			t.Helper()
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := admin.Stats(ctx, d, o, &out); err != nil {
				t.Fatal(err)
			}
			for _, leak := range []string{reg.Token, reg.Node, reg.Device} {
				if strings.Contains(out.String(), leak) {
					t.Fatalf("stats --node shows %q:\n%s", leak, &out)
				}
			}
			return out.String()
		}
		out := run(admin.StatsOptions{Node: reg.Node})
		for _, want := range []string{"service       fcm\n", "domain        example.org\n", "pushes        0\n",
			"last push     never\n", "last failure  never\n"} {
			if !strings.Contains(out, want) {
				t.Fatalf("never pushed: no %q in\n%s", want, out)
			}
		}

		failed := time.Date(2025, 3, 4, 10, 11, 12, 0, time.UTC)
		delivered := failed.Add(time.Minute)
		if err := d.RecordPushes(ctx, p2http.PushRecord{Node: reg.Node, Pushes: 4, At: failed, Outcome: p2http.PushFailed,
			FailedAt: failed, FailureReason: "QUOTA_EXCEEDED"}); err != nil {
			t.Fatal(err)
		}
		if err := d.RecordPushes(ctx, p2http.PushRecord{Node: reg.Node, Pushes: 2, At: delivered, Outcome: p2http.PushDelivered}); err != nil {
			t.Fatal(err)
		}
		out = run(admin.StatsOptions{Node: reg.Node})
		for _, want := range []string{"pushes        6\n", "last push     2025-03-04T10:12:12Z delivered\n",
			"last failure  2025-03-04T10:11:12Z QUOTA_EXCEEDED\n"} {
			if !strings.Contains(out, want) {
				t.Fatalf("no %q in\n%s", want, out)
			}
		}
		var info map[string]any
		if err := json.Unmarshal([]byte(run(admin.StatsOptions{Node: reg.Node, JSON: true})), &info); err != nil {
			t.Fatal(err)
		}
		if info["push_count"] != 6.0 || info["last_push_outcome"] != "delivered" || info["last_failure_reason"] != "QUOTA_EXCEEDED" ||
			info["last_failure_at"] != "2025-03-04T10:11:12Z" || info["service"] != "fcm" {
			t.Fatalf("stats --node --json %v", info)
		}

		err := admin.Stats(ctx, d, admin.StatsOptions{Node: "no-such-node"}, &bytes.Buffer{})
		if err == nil || strings.Contains(err.Error(), "no-such-node") || !strings.Contains(err.Error(), "no registration holds this node") {
			t.Fatalf("unknown node: %v", err)
		}
	})
	for _, o := range []admin.StatsOptions{{Node: "n", Top: 3}, {Node: strings.Repeat("n", p2http.MaxNodeLength+1)}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
