package db_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/migrations"
)

// device returns a valid device hash that differs per name.
func device(name string) string { return p2http.DeviceHash(name+"@example.org", "phone") }

// reg returns a valid registration with fresh node, no times.
func reg(name string) p2http.Registration {
	return p2http.Registration{
		Service: p2http.FCM,
		Device:  device(name),
		Domain:  "example.org",
		Token:   "token-" + name,
		Node:    p2http.NewNode(),
	}
}

// micro is t as the store returns it: UTC, to the microsecond.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := p2http.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	var e *p2http.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *p2http.Error", err, err)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v (%v), want %v in UTC", what, got, got.Location(), want)
	}
}

func TestRegisterNew(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		// Nanoseconds and a zone other than UTC: stored to the µs, read as UTC.
		r.CreatedAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
		r.UpdatedAt = r.CreatedAt.Add(1500 * time.Nanosecond)

		got, created, err := d.Register(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !created {
			t.Error("created = false for a new registration")
		}
		want := r
		want.App = p2http.DefaultApp
		want.SecretKind = p2http.SecretDerived
		want.CreatedAt = micro(r.CreatedAt)
		want.UpdatedAt = micro(r.UpdatedAt)
		checkRegistration(t, got, want)

		looked, err := d.Lookup(ctx, r.Node)
		if err != nil {
			t.Fatal(err)
		}
		checkRegistration(t, looked, want)
	})
}

func checkRegistration(t *testing.T, got, want p2http.Registration) {
	t.Helper()
	if got.App != want.App || got.Service != want.Service || got.Device != want.Device ||
		got.Domain != want.Domain || got.Token != want.Token || got.Node != want.Node ||
		got.SecretKind != want.SecretKind || !bytes.Equal(got.SecretEnc, want.SecretEnc) ||
		(got.SecretEnc == nil) != (want.SecretEnc == nil) {
		t.Errorf("registration\n got %+v\nwant %+v", got, want)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	switch {
	case want.LastPushAt == nil && got.LastPushAt != nil:
		t.Errorf("LastPushAt = %v, want nil", *got.LastPushAt)
	case want.LastPushAt != nil && got.LastPushAt == nil:
		t.Errorf("LastPushAt = nil, want %v", *want.LastPushAt)
	case want.LastPushAt != nil:
		sameTime(t, "LastPushAt", *got.LastPushAt, *want.LastPushAt)
	}
}

func TestRegisterDefaultsTimesToNow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		before := time.Now().Add(-time.Millisecond)
		got, _, err := d.Register(ctxT(t), reg("alice"))
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now().Add(time.Millisecond)
		if got.CreatedAt.Before(before) || got.CreatedAt.After(after) || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("times %v, %v not now (%v…%v)", got.CreatedAt, got.UpdatedAt, before, after)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
		}
	})
}

func TestReRegister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		first := reg("alice")
		first.CreatedAt, first.UpdatedAt = t0, t0
		stored, _, err := d.Register(ctx, first)
		if err != nil {
			t.Fatal(err)
		}

		again := reg("alice")
		again.Token = "new-token"
		again.Domain = "other.example" // not replaced: the device hash pins the account
		again.CreatedAt = t0.Add(time.Hour)
		again.UpdatedAt = t0.Add(time.Hour)
		got, created, err := d.Register(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if created {
			t.Error("created = true on re-registration")
		}
		want := stored
		want.Token = "new-token"
		want.UpdatedAt = t0.Add(time.Hour)
		checkRegistration(t, got, want)

		if _, err := d.Lookup(ctx, again.Node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
			t.Errorf("the proposed node of a re-registration was stored: %v", err)
		}
		looked, err := d.Lookup(ctx, first.Node)
		if err != nil {
			t.Fatal(err)
		}
		checkRegistration(t, looked, want)

		// The same token again (Conversations re-registers at every
		// login): only the update time is renewed, and this instance's
		// cache, which holds the row since the look-up, forgets it.
		same := reg("alice")
		same.Token = "new-token"
		same.UpdatedAt = t0.Add(2 * time.Hour)
		got, created, err = d.Register(ctx, same)
		if err != nil || created {
			t.Fatalf("re-registration with the same token: created %v, %v", created, err)
		}
		want.UpdatedAt = t0.Add(2 * time.Hour)
		checkRegistration(t, got, want)
		if looked, err = d.Lookup(ctx, first.Node); err != nil {
			t.Fatal(err)
		}
		checkRegistration(t, looked, want)
	})
}

func TestSeparateRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		base := reg("alice")
		apns := reg("alice")
		apns.Service, apns.Token = p2http.APNs, "0a1b2c"
		otherApp := reg("alice")
		otherApp.App = "conversations.beta"
		nodes := map[string]bool{}
		for _, r := range []p2http.Registration{base, apns, otherApp} {
			got, created, err := d.Register(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if !created || got.Node != r.Node {
				t.Errorf("%s/%s: created %v, node %q, want new row with %q", got.App, got.Service, created, got.Node, r.Node)
			}
			nodes[got.Node] = true
		}
		if len(nodes) != 3 {
			t.Errorf("%d distinct nodes, want 3", len(nodes))
		}
		counts, err := d.CountRegistrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[p2http.FCM] != 2 || counts[p2http.APNs] != 1 {
			t.Errorf("counts %v, want fcm 2, apns 1", counts)
		}
		if err := d.Unregister(ctx, "conversations.beta", p2http.FCM, base.Device); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lookup(ctx, base.Node); err != nil {
			t.Errorf("unregistering another app removed the default app's row: %v", err)
		}
	})
}

func TestConcurrentFirstRegistrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		const n = 20
		type result struct {
			proposed, node string
			created        bool
			err            error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := reg("alice")
				r.Token = fmt.Sprintf("token-%d", i)
				<-start
				got, created, err := d.Register(ctx, r)
				results[i] = result{r.Node, got.Node, created, err}
			}()
		}
		close(start)
		wg.Wait()

		createdCount := 0
		node := results[0].node
		for i, res := range results {
			if res.err != nil {
				t.Fatalf("caller %d: %v", i, res.err)
			}
			if res.node != node {
				t.Errorf("caller %d got node %q, caller 0 %q", i, res.node, node)
			}
			if res.created {
				createdCount++
				if res.proposed != node {
					t.Errorf("caller %d created the row but its node is not the stored one", i)
				}
			}
		}
		if createdCount != 1 {
			t.Errorf("%d callers were told they created the row, want 1", createdCount)
		}
		counts, err := d.CountRegistrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[p2http.FCM] != 1 {
			t.Errorf("%d rows, want 1", counts[p2http.FCM])
		}
	})
}

func TestNodeTaken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		alice := reg("alice")
		if _, _, err := d.Register(ctx, alice); err != nil {
			t.Fatal(err)
		}
		bob := reg("bob")
		bob.Node = alice.Node
		_, _, err := d.Register(ctx, bob)
		if !errors.Is(err, db.ErrNodeTaken) {
			t.Fatalf("Register with a taken node: %v, want ErrNodeTaken", err)
		}
		wantCode(t, err, p2http.EINTERNAL)

		bob.Node = p2http.NewNode()
		if _, created, err := d.Register(ctx, bob); err != nil || !created {
			t.Fatalf("retry with a new node: created %v, %v", created, err)
		}
		got, err := d.Lookup(ctx, alice.Node)
		if err != nil || got.Device != alice.Device {
			t.Errorf("alice's row after the collision: %+v, %v", got, err)
		}
	})
}

func TestUnregister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		wantCode(t, d.Unregister(ctx, "", p2http.APNs, r.Device), p2http.ENOTFOUND)
		if err := d.Unregister(ctx, "", p2http.FCM, r.Device); err != nil {
			t.Fatal(err)
		}
		_, err := d.Lookup(ctx, r.Node)
		wantCode(t, err, p2http.ENOTFOUND)
		wantCode(t, d.Unregister(ctx, p2http.DefaultApp, p2http.FCM, r.Device), p2http.ENOTFOUND)
	})
}

func TestLookupUnknown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, err := d.Lookup(ctxT(t), "no-such-node")
		wantCode(t, err, p2http.ENOTFOUND)
	})
}

func TestRemoveDead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
		r := reg("alice")
		r.CreatedAt, r.UpdatedAt = t0, t0
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		// Re-registered a microsecond after the token was reported dead:
		// the row stays.
		r2 := reg("alice")
		r2.UpdatedAt = t0.Add(time.Second)
		if _, _, err := d.Register(ctx, r2); err != nil {
			t.Fatal(err)
		}
		for _, before := range []time.Time{t0, t0.Add(time.Second - time.Microsecond), t0.Add(time.Second)} {
			removed, err := d.RemoveDead(ctx, r.Node, before)
			if err != nil {
				t.Fatal(err)
			}
			if removed {
				t.Fatalf("removed with before = updated_at - %v", t0.Add(time.Second).Sub(before))
			}
		}
		removed, err := d.RemoveDead(ctx, r.Node, t0.Add(time.Second+time.Microsecond))
		if err != nil || !removed {
			t.Fatalf("RemoveDead after the update: %v, %v; want true", removed, err)
		}
		_, err = d.Lookup(ctx, r.Node)
		wantCode(t, err, p2http.ENOTFOUND)
		removed, err = d.RemoveDead(ctx, r.Node, time.Now())
		if err != nil || removed {
			t.Fatalf("RemoveDead of a removed node: %v, %v; want false, nil", removed, err)
		}
	})
}

// delivered records one delivered push to each node at t.
func delivered(t testing.TB, d *db.DB, at time.Time, nodes ...string) {
	t.Helper()
	recs := make([]p2http.PushRecord, len(nodes))
	for i, n := range nodes {
		recs[i] = p2http.PushRecord{Node: n, Pushes: 1, At: at, Outcome: p2http.PushDelivered}
	}
	if err := d.RecordPushes(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

// failedPush is a record of one push that failed at t for reason.
func failedPush(node string, at time.Time, reason string) p2http.PushRecord {
	return p2http.PushRecord{Node: node, Pushes: 1, At: at, Outcome: p2http.PushFailed, FailedAt: at, FailureReason: reason}
}

// checkHistory compares the push history of got with want, times to the
// microsecond in UTC.
func checkHistory(t *testing.T, what string, got, want p2http.PushHistory) {
	t.Helper()
	if got.Recorded != want.Recorded || got.Pushes != want.Pushes || got.LastOutcome != want.LastOutcome ||
		got.LastFailureReason != want.LastFailureReason {
		t.Errorf("%s: history %+v, want %+v", what, got, want)
	}
	for _, c := range []struct {
		name      string
		got, want *time.Time
	}{{"LastPushAt", got.LastPushAt, want.LastPushAt}, {"LastFailureAt", got.LastFailureAt, want.LastFailureAt}} {
		switch {
		case (c.got == nil) != (c.want == nil):
			t.Errorf("%s: %s = %v, want %v", what, c.name, c.got, c.want)
		case c.got != nil:
			sameTime(t, what+": "+c.name, *c.got, micro(*c.want))
		}
	}
}

// Every record adds to its node's history as p2http.PushHistory.Add says,
// in the database and in the cache alike; re-registering keeps the history.
func TestRecordPushes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		stored, _, err := d.Register(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		checkHistory(t, "new registration", stored.PushHistory, p2http.PushHistory{Recorded: true})

		t0 := time.Date(2025, 7, 8, 9, 10, 11, 987654321, time.FixedZone("PDT", -7*3600))
		t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
		want := p2http.PushHistory{Recorded: true}
		for _, c := range []struct {
			name string
			rec  p2http.PushRecord
		}{
			{"delivered", p2http.PushRecord{Node: r.Node, Pushes: 2, At: t1, Outcome: p2http.PushDelivered}},
			{"failed", failedPush(r.Node, t2, "QUOTA_EXCEEDED")},
			// Another instance's record of earlier pushes: counted, the
			// later push stays the last.
			{"earlier", p2http.PushRecord{Node: r.Node, Pushes: 3, At: t0, Outcome: p2http.PushCoalesced}},
			// A trailing push: no count of its own.
			{"trailing", p2http.PushRecord{Node: r.Node, At: t3, Outcome: p2http.PushDelivered}},
		} {
			for _, cached := range []bool{true, false} {
				db.SetCacheForTest(d, cached)
				if _, err := d.Lookup(ctx, r.Node); err != nil { // cached, when on
					t.Fatal(err)
				}
				if cached { // the same record is applied once, with the cache on
					if err := d.RecordPushes(ctx, c.rec); err != nil {
						t.Fatal(err)
					}
					want.Add(c.rec)
				}
				got, err := d.Lookup(ctx, r.Node)
				if err != nil {
					t.Fatal(err)
				}
				checkHistory(t, fmt.Sprintf("%s (cache %v)", c.name, cached), got.PushHistory, want)
			}
		}
		if want.Pushes != 6 || want.LastOutcome != p2http.PushDelivered || !want.LastPushAt.Equal(t3) ||
			want.LastFailureReason != "QUOTA_EXCEEDED" || !want.LastFailureAt.Equal(t2) {
			t.Fatalf("the test's own history is off: %+v", want)
		}

		// Registering again keeps the history, as the upsert returns it.
		again := r
		again.Node = p2http.NewNode()
		again.Token = "token-renewed"
		got, created, err := d.Register(ctx, again)
		if err != nil || created {
			t.Fatalf("re-register: %v, created %v", err, created)
		}
		checkHistory(t, "re-registered", got.PushHistory, want)
		db.SetCacheForTest(d, true)
		if got, err = d.Lookup(ctx, r.Node); err != nil {
			t.Fatal(err)
		}
		checkHistory(t, "re-registered, looked up", got.PushHistory, want)

		// Unknown nodes are skipped; a batch holds many nodes, each with
		// its own record.
		var nodes []string
		recs := []p2http.PushRecord{{Node: "no-such-node", Pushes: 1, At: t1, Outcome: p2http.PushDelivered}}
		for i := range 600 {
			n := reg(fmt.Sprint("batch", i))
			if _, _, err := d.Register(ctx, n); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n.Node)
			rec := p2http.PushRecord{Node: n.Node, Pushes: int64(i), At: t0.Add(time.Duration(i) * time.Second), Outcome: p2http.PushCoalesced}
			if i%3 == 0 {
				rec = failedPush(n.Node, rec.At, fmt.Sprint("REASON_", i%7))
			}
			recs = append(recs, rec)
		}
		if err := d.RecordPushes(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		db.SetCacheForTest(d, false)
		for i, n := range nodes {
			got, err := d.Lookup(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			want := p2http.PushHistory{Recorded: true}
			want.Add(recs[i+1])
			checkHistory(t, fmt.Sprint("batch node ", i), got.PushHistory, want)
		}
		if _, err := d.Lookup(ctx, "no-such-node"); p2http.ErrorCode(err) != p2http.ENOTFOUND {
			t.Fatalf("an unknown node was created: %v", err)
		}
		if err := d.RecordPushes(ctx); err != nil {
			t.Fatalf("no records: %v", err)
		}
	})
}

// A reason longer than any p2http.FailureReason gives is refused by the
// schema, on both databases.
func TestRecordPushesBoundsReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		long := failedPush(r.Node, time.Now(), strings.Repeat("X", 65))
		if err := d.RecordPushes(ctx, long); err == nil {
			t.Fatal("a 65-byte reason was stored")
		}
		bad := p2http.PushRecord{Node: r.Node, Pushes: 1, At: time.Now(), Outcome: "lost"}
		if err := d.RecordPushes(ctx, bad); err == nil {
			t.Fatal("an unknown outcome was stored")
		}
	})
}

func TestKeptSecret(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		r.SecretKind = p2http.SecretKept
		r.SecretEnc = []byte{0, 1, 2, 0xff, 0xfe, 0, 'x'}
		stored, _, err := d.Register(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Lookup(ctx, r.Node)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []p2http.Registration{stored, got} {
			if g.SecretKind != p2http.SecretKept || !bytes.Equal(g.SecretEnc, r.SecretEnc) {
				t.Errorf("kept secret came back as %q %x, want %x", g.SecretKind, g.SecretEnc, r.SecretEnc)
			}
		}
	})
}

func TestRegisterInvalid(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		for name, mutate := range map[string]func(r *p2http.Registration){
			"service":       func(r *p2http.Registration) { r.Service = "gcm" },
			"device short":  func(r *p2http.Registration) { r.Device = r.Device[:39] },
			"device upper":  func(r *p2http.Registration) { r.Device = "ABCDEF" + r.Device[6:] },
			"domain":        func(r *p2http.Registration) { r.Domain = "" },
			"token":         func(r *p2http.Registration) { r.Token = "" },
			"node":          func(r *p2http.Registration) { r.Node = "" },
			"secret kind":   func(r *p2http.Registration) { r.SecretKind = "stolen" },
			"kept no bytes": func(r *p2http.Registration) { r.SecretKind = p2http.SecretKept },
			"derived bytes": func(r *p2http.Registration) { r.SecretEnc = []byte{1} },
		} {
			r := reg("alice")
			mutate(&r)
			_, _, err := d.Register(ctx, r)
			if p2http.ErrorCode(err) != p2http.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
		counts, err := d.CountRegistrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[p2http.FCM]+counts[p2http.APNs] != 0 {
			t.Errorf("invalid registrations were stored: %v", counts)
		}
	})
}

func TestEnsureMeta(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		got, err := d.EnsureMeta(ctx, "server_key_fingerprint", "first")
		if err != nil || got != "first" {
			t.Fatalf("EnsureMeta first: %q, %v", got, err)
		}
		got, err = d.EnsureMeta(ctx, "server_key_fingerprint", "second")
		if err != nil || got != "first" {
			t.Fatalf("EnsureMeta second: %q, %v; want the first value", got, err)
		}
		got, err = d.EnsureMeta(ctx, "other", "x")
		if err != nil || got != "x" {
			t.Fatalf("EnsureMeta other key: %q, %v", got, err)
		}
	})
}

func TestMigrationVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		v, dirty, err := d.MigrationVersion(ctxT(t))
		if err != nil || v != migrations.Latest() || dirty {
			t.Fatalf("MigrationVersion = %d, %v, %v; want %d, false, nil", v, dirty, err, migrations.Latest())
		}
	})
}

func TestDriver(t *testing.T) {
	if got := dbtest.SQLite(t).Driver(); got != "sqlite" {
		t.Errorf("SQLite Driver() = %q", got)
	}
	if got := dbtest.Postgres(t).Driver(); got != "postgres" {
		t.Errorf("PostgreSQL Driver() = %q", got)
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := d.Lookup(ctx, r.Node)
		wantCode(t, err, p2http.EUNAVAILABLE)
		if msg := p2http.ErrorMessage(err); msg != "database unavailable" {
			t.Errorf("message %q", msg)
		}
		wantCode(t, d.Ping(ctx), p2http.EUNAVAILABLE)
		_, _, err = d.Register(ctx, reg("bob"))
		wantCode(t, err, p2http.EUNAVAILABLE)
		_, err = d.RemoveDead(ctx, r.Node, time.Now())
		wantCode(t, err, p2http.EUNAVAILABLE)
		_, _, err = d.MigrationVersion(ctx)
		wantCode(t, err, p2http.EUNAVAILABLE)
	})
}

func TestDeadlineIsUnavailable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.Lookup(ctx, "x")
		wantCode(t, err, p2http.EUNAVAILABLE)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cause %v is not context.Canceled", err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		wantCode(t, d.Ping(ctx), p2http.EUNAVAILABLE)
		_, _, err = d.Register(ctx, reg("alice"))
		wantCode(t, err, p2http.EUNAVAILABLE)
	})
}

func TestErrorsHideData(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		r := reg("alice")
		r.Token = "SECRET-TOKEN-VALUE"
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		r2 := reg("bob")
		r2.Token = "SECRET-TOKEN-VALUE"
		r2.Node = r.Node
		_, _, err := d.Register(ctx, r2)
		for _, s := range []string{err.Error(), p2http.ErrorMessage(err)} {
			if bytes.Contains([]byte(s), []byte("SECRET-TOKEN-VALUE")) || bytes.Contains([]byte(s), []byte(r.Node)) {
				t.Errorf("error text carries registration data: %q", s)
			}
		}
	})
}
