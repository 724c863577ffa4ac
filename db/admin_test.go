package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// kept returns a registration with a kept secret (opaque bytes here).
func kept(name string) p2http.Registration {
	r := reg(name)
	r.SecretKind = p2http.SecretKept
	r.SecretEnc = []byte("sealed-" + name)
	return r
}

func wantOutcomes(t *testing.T, got []db.ImportOutcome, want ...db.ImportOutcome) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
}

func TestImport(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		// A phone that registered with p2http before the import.
		ours, _, err := d.Register(ctx, reg("ours"))
		if err != nil {
			t.Fatal(err)
		}
		a, b := kept("a"), kept("b")
		pushed := time.Now().Add(-time.Hour)
		b.LastPushAt = &pushed
		again := kept("ours") // the same device in p2, with p2's node
		again.Service = p2http.APNs
		again.Token = "abcdef"
		stolen := kept("c")
		stolen.Node = ours.Node // another device holding our node
		dupDevice := kept("a")  // repeated within the call, another node
		dupNode := kept("d")
		dupNode.Node = a.Node

		got, err := d.Import(ctx, []p2http.Registration{a, b, again, stolen, dupDevice, dupNode}, false)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportInserted, db.ImportInserted, db.ImportDeviceRegistered,
			db.ImportNodeTaken, db.ImportDeviceRegistered, db.ImportNodeTaken)

		stored, err := d.Lookup(ctx, a.Node)
		if err != nil {
			t.Fatal(err)
		}
		if stored.App != p2http.DefaultApp || stored.SecretKind != p2http.SecretKept || string(stored.SecretEnc) != "sealed-a" ||
			stored.Device != a.Device || stored.Token != a.Token || stored.Domain != a.Domain || stored.LastPushAt != nil ||
			stored.CreatedAt.IsZero() || !stored.CreatedAt.Equal(stored.UpdatedAt) {
			t.Fatalf("imported %+v", stored)
		}
		if sb, _ := d.Lookup(ctx, b.Node); sb.LastPushAt == nil || !sb.LastPushAt.Equal(micro(pushed)) {
			t.Fatalf("last push of b: %v", sb.LastPushAt)
		}
		if so, _ := d.Lookup(ctx, ours.Node); so.Device != ours.Device || so.Token != ours.Token || so.SecretKind != p2http.SecretDerived {
			t.Fatalf("our registration changed: %+v", so)
		}

		// Twice: nothing changes.
		got, err = d.Import(ctx, []p2http.Registration{a, b, again, stolen}, false)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportAlreadyPresent, db.ImportAlreadyPresent, db.ImportDeviceRegistered, db.ImportNodeTaken)
		if n, _ := d.CountRegistrations(ctx); n[p2http.FCM]+n[p2http.APNs] != 3 {
			t.Fatalf("counts %v", n)
		}
	})
}

// A second import (at switch-over) brings p2's newer token to a
// registration an earlier import wrote, unless the phone registered with
// p2http since: then its own token is newer.
func TestImportTokenUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		a, b := kept("a"), kept("b")
		if _, err := d.Import(ctx, []p2http.Registration{a, b}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lookup(ctx, a.Node); err != nil { // cached now
			t.Fatal(err)
		}
		a2, b2 := a, b
		a2.Token, b2.Token = "p2-newer-a", "p2-newer-b"
		// b's phone registers with p2http (keeping the node, as Register does).
		rb := b
		rb.Token, rb.SecretKind, rb.SecretEnc, rb.UpdatedAt = "p2http-b", "", nil, time.Now().Add(time.Second)
		rb.Node = p2http.NewNode()
		if _, created, err := d.Register(ctx, rb); err != nil || created {
			t.Fatalf("re-register b: created=%v %v", created, err)
		}

		got, err := d.Import(ctx, []p2http.Registration{a2, b2}, true)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportTokenUpdated, db.ImportAlreadyPresent)
		if s, _ := d.Lookup(ctx, a.Node); s.Token != a.Token {
			t.Fatal("a dry run replaced a token")
		}
		got, err = d.Import(ctx, []p2http.Registration{a2, b2, a2}, false)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportTokenUpdated, db.ImportAlreadyPresent, db.ImportAlreadyPresent)
		sa, err := d.Lookup(ctx, a.Node)
		if err != nil || sa.Token != "p2-newer-a" || !sa.CreatedAt.Equal(sa.UpdatedAt) || string(sa.SecretEnc) != "sealed-a" {
			t.Fatalf("a after the second import: %+v, %v", sa, err)
		}
		if sb, _ := d.Lookup(ctx, b.Node); sb.Token != "p2http-b" {
			t.Fatalf("b's own newer token was replaced by p2's: %q", sb.Token)
		}
		// Same tokens again: nothing changes.
		got, err = d.Import(ctx, []p2http.Registration{a2, b2}, false)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportAlreadyPresent, db.ImportAlreadyPresent)
	})
}

func TestImportDryRunAndInvalid(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		got, err := d.Import(ctx, []p2http.Registration{kept("a"), kept("b")}, true)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes(t, got, db.ImportInserted, db.ImportInserted)
		if n, _ := d.CountRegistrations(ctx); n[p2http.FCM] != 0 {
			t.Fatalf("a dry run wrote %v", n)
		}
		bad := kept("x")
		bad.Token = ""
		_, err = d.Import(ctx, []p2http.Registration{kept("y"), bad}, false)
		wantCode(t, err, p2http.EINVALID)
		if p2http.ErrorMessage(err) != "registration 1: token is required" {
			t.Fatalf("message %q", p2http.ErrorMessage(err))
		}
		if n, _ := d.CountRegistrations(ctx); n[p2http.FCM] != 0 {
			t.Fatalf("an invalid call wrote %v", n)
		}
	})
}

// More registrations than one transaction takes.
func TestImportManyBatches(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		regs := make([]p2http.Registration, 1234)
		for i := range regs {
			regs[i] = kept(fmt.Sprint("many", i))
		}
		for round, want := range []db.ImportOutcome{db.ImportInserted, db.ImportAlreadyPresent} {
			got, err := d.Import(ctx, regs, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(regs) {
				t.Fatalf("%d outcomes", len(got))
			}
			for i, o := range got {
				if o != want {
					t.Fatalf("round %d: outcome %d is %v", round, i, o)
				}
			}
		}
		st, err := d.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 1234 || st.BySecret[p2http.SecretKept] != 1234 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestStats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		st, err := d.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 0 || len(st.Domains) != 0 || st.ByService[p2http.FCM] != 0 || len(st.ByService) != 2 {
			t.Fatalf("empty stats %+v", st)
		}
		add := func(name, domain string, svc p2http.Service, app p2http.App) {
			r := reg(name)
			r.Domain, r.Service, r.App = domain, svc, app
			if svc == p2http.APNs {
				r.Token = "abcd"
			}
			if _, _, err := d.Register(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		add("a", "b.org", p2http.FCM, "")
		add("b", "a.org", p2http.FCM, "")
		add("c", "a.org", p2http.APNs, "")
		add("d", "c.org", p2http.APNs, "other")
		add("e", "c.org", p2http.FCM, "other")
		if _, err := d.Import(ctx, []p2http.Registration{kept("f")}, false); err != nil { // example.org
			t.Fatal(err)
		}
		st, err = d.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 6 || st.ByService[p2http.FCM] != 4 || st.ByService[p2http.APNs] != 2 ||
			st.ByApp["default"] != 4 || st.ByApp["other"] != 2 ||
			st.BySecret[p2http.SecretKept] != 1 || st.BySecret[p2http.SecretDerived] != 5 {
			t.Fatalf("stats %+v", st)
		}
		if want := map[string]map[p2http.Service]int64{"default": {p2http.FCM: 3, p2http.APNs: 1}, "other": {p2http.FCM: 1, p2http.APNs: 1}}; !reflect.DeepEqual(st.ByAppService, want) {
			t.Fatalf("stats by app and service %v, want %v", st.ByAppService, want)
		}
		var order []string
		for _, ds := range st.Domains {
			order = append(order, fmt.Sprintf("%s:%d/%d/%d", ds.Domain, ds.Total, ds.ByService[p2http.FCM], ds.ByService[p2http.APNs]))
		}
		if got := fmt.Sprint(order); got != "[a.org:2/1/1 c.org:2/1/1 b.org:1/1/0 example.org:1/1/0]" {
			t.Fatalf("domains %s", got)
		}
	})
}

func TestPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		now := time.Now()
		days := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
		at := func(name string, updated time.Time, pushed *time.Time) p2http.Registration {
			r := reg(name)
			r.UpdatedAt = updated
			stored, _, err := d.Register(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if pushed != nil {
				delivered(t, d, *pushed, stored.Node)
			}
			return stored
		}
		recentPush := days(10)
		oldPush := days(100)
		fresh := at("fresh", days(1), nil)
		pushedLately := at("pushed", days(200), &recentPush)
		stale := at("stale", days(120), nil)
		stalePushed := at("stale-pushed", days(300), &oldPush)
		// Cache the stale registration: the purge must not leave it there.
		if _, err := d.Lookup(ctx, stale.Node); err != nil {
			t.Fatal(err)
		}

		n, err := d.CountInactive(ctx, days(90))
		if err != nil || n != 2 {
			t.Fatalf("CountInactive = %d, %v; want 2", n, err)
		}
		n, err = d.Purge(ctx, days(90))
		if err != nil || n != 2 {
			t.Fatalf("Purge = %d, %v; want 2", n, err)
		}
		for _, r := range []p2http.Registration{stale, stalePushed} {
			if _, err := d.Lookup(ctx, r.Node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
				t.Fatalf("purged registration still found: %v", err)
			}
		}
		for _, r := range []p2http.Registration{fresh, pushedLately} {
			if _, err := d.Lookup(ctx, r.Node); err != nil {
				t.Fatalf("active registration gone: %v", err)
			}
		}
		if n, err := d.Purge(ctx, days(90)); err != nil || n != 0 {
			t.Fatalf("second Purge = %d, %v", n, err)
		}
	})
}

// More inactive registrations than one purge transaction takes, mixed with
// active ones.
func TestPurgeManyChunks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		old := time.Now().Add(-400 * 24 * time.Hour)
		regs := make([]p2http.Registration, 2500)
		for i := range regs {
			regs[i] = reg(fmt.Sprint("p", i))
			if i%5 != 0 {
				regs[i].UpdatedAt = old
			}
		}
		if _, err := d.Import(ctx, regs, false); err != nil {
			t.Fatal(err)
		}
		n, err := d.Purge(ctx, time.Now().Add(-24*time.Hour))
		if err != nil || n != 2000 {
			t.Fatalf("Purge = %d, %v; want 2000", n, err)
		}
		if st, _ := d.Stats(ctx); st.Total != 500 {
			t.Fatalf("%d left", st.Total)
		}
	})
}

// On PostgreSQL a purge by one instance reaches the cache of another at
// once, through NOTIFY, not after the cache's time to live.
func TestPurgeNotifiesOtherInstances(t *testing.T) {
	ctx := ctxT(t)
	a, b, url := twoInstances(t)
	raw, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	r := reg("gone")
	r.UpdatedAt = time.Now().Add(-400 * 24 * time.Hour)
	stored, _, err := a.Register(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until b has it cached: a token changed behind its back (no
	// notification) is not seen.
	for attempt := 0; ; attempt++ {
		if _, err := b.Lookup(ctx, stored.Node); err != nil {
			t.Fatal(err)
		}
		behind := fmt.Sprint("behind-", attempt)
		if _, err := raw.ExecContext(ctx, `UPDATE registrations SET token = $1 WHERE node = $2`, behind, stored.Node); err != nil {
			t.Fatal(err)
		}
		got, err := b.Lookup(ctx, stored.Node)
		if err != nil {
			t.Fatal(err)
		}
		if got.Token != behind {
			break
		}
		if attempt > 100 {
			t.Fatal("the second instance never caches")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := a.Purge(ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Lookup(ctx, stored.Node)
		if p2http.ErrorCode(err) == p2http.ENOTFOUND {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other instance still finds the purged node after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// copyPair runs f with a source and a target of different databases, both
// ways.
func copyPair(t *testing.T, f func(t *testing.T, src, dst *db.DB)) {
	t.Run("sqlite-to-postgres", func(t *testing.T) { f(t, dbtest.SQLite(t), dbtest.Postgres(t)) })
	t.Run("postgres-to-sqlite", func(t *testing.T) { f(t, dbtest.Postgres(t), dbtest.SQLite(t)) })
}

func TestCopyTo(t *testing.T) {
	copyPair(t, func(t *testing.T, src, dst *db.DB) {
		ctx := ctxT(t)
		if _, err := src.EnsureMeta(ctx, db.MetaKeyFingerprint, "v1:abc"); err != nil {
			t.Fatal(err)
		}
		if _, err := src.EnsureMeta(ctx, "other", "x"); err != nil {
			t.Fatal(err)
		}
		var regs []p2http.Registration
		for i := range 1100 {
			r := kept(fmt.Sprint("c", i))
			if i%2 == 0 {
				r = reg(fmt.Sprint("c", i))
			}
			r.UpdatedAt = time.Now().Add(-time.Duration(i) * time.Minute)
			regs = append(regs, r)
		}
		if _, err := src.Import(ctx, regs, false); err != nil {
			t.Fatal(err)
		}
		pushed := time.Now().Add(-time.Second)
		delivered(t, src, pushed, regs[3].Node)
		var calls int
		rep, err := src.CopyTo(ctx, dst, 300, func(db.CopyReport) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		if rep != (db.CopyReport{Registrations: 1100, Written: 1100, Meta: 2}) || calls != 4 {
			t.Fatalf("first copy %+v in %d batches", rep, calls)
		}
		meta, err := dst.AllMeta(ctx)
		if err != nil || meta[db.MetaKeyFingerprint] != "v1:abc" || meta["other"] != "x" {
			t.Fatalf("meta %v %v", meta, err)
		}
		for _, i := range []int{0, 3, 1099} {
			s, _ := src.Lookup(ctx, regs[i].Node)
			d, err := dst.Lookup(ctx, regs[i].Node)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(s) != fmt.Sprint(d) {
				t.Fatalf("copied\n%+v\nfrom\n%+v", d, s)
			}
		}

		// Again: nothing to write.
		rep, err = src.CopyTo(ctx, dst, 0, nil)
		if err != nil || rep != (db.CopyReport{Registrations: 1100, Unchanged: 1100}) {
			t.Fatalf("second copy %+v, %v", rep, err)
		}

		// The source moves on for one registration, the target for another:
		// each keeps what is newer.
		moved := regs[10]
		moved.Token = "new-token"
		moved.UpdatedAt = time.Now()
		if _, _, err := src.Register(ctx, moved); err != nil {
			t.Fatal(err)
		}
		ahead := regs[12]
		ahead.Token = "target-token"
		ahead.UpdatedAt = time.Now()
		if _, _, err := dst.Register(ctx, ahead); err != nil {
			t.Fatal(err)
		}
		// In the target a new phone happens to hold a node the source gives
		// to another registration.
		clash := reg("clash")
		clash.Node = "clash-node"
		if _, _, err := dst.Register(ctx, clash); err != nil {
			t.Fatal(err)
		}
		other := reg("clash-src")
		other.Node = "clash-node"
		if _, _, err := src.Register(ctx, other); err != nil {
			t.Fatal(err)
		}
		rep, err = src.CopyTo(ctx, dst, 0, nil)
		if err != nil || rep != (db.CopyReport{Registrations: 1101, Written: 1, Unchanged: 1099, NodeConflicts: 1}) {
			t.Fatalf("third copy %+v, %v", rep, err)
		}
		if got, _ := dst.Lookup(ctx, moved.Node); got.Token != "new-token" {
			t.Fatalf("newer source row not copied: %q", got.Token)
		}
		if got, _ := dst.Lookup(ctx, ahead.Node); got.Token != "target-token" {
			t.Fatalf("newer target row overwritten: %q", got.Token)
		}
		if got, _ := dst.Lookup(ctx, "clash-node"); got.Device != clash.Device {
			t.Fatalf("clashing node taken over")
		}
	})
}

func TestCopyToRefusesAnotherKey(t *testing.T) {
	copyPair(t, func(t *testing.T, src, dst *db.DB) {
		ctx := ctxT(t)
		src.EnsureMeta(ctx, db.MetaKeyFingerprint, "v1:one")
		dst.EnsureMeta(ctx, db.MetaKeyFingerprint, "v1:two")
		if _, err := src.Import(ctx, []p2http.Registration{kept("a")}, false); err != nil {
			t.Fatal(err)
		}
		_, err := src.CopyTo(ctx, dst, 0, nil)
		if !errors.Is(err, db.ErrFingerprintMismatch) {
			t.Fatalf("copy to a database of another key: %v", err)
		}
		if st, _ := dst.Stats(ctx); st.Total != 0 {
			t.Fatal("rows copied anyway")
		}
	})
}

func TestAdminUnavailable(t *testing.T) {
	d, err := db.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	ctx := ctxT(t)
	_, err = d.Stats(ctx)
	wantCode(t, err, p2http.EUNAVAILABLE)
	_, err = d.Purge(ctx, time.Now())
	wantCode(t, err, p2http.EUNAVAILABLE)
	_, err = d.CountInactive(ctx, time.Now())
	wantCode(t, err, p2http.EUNAVAILABLE)
	_, err = d.Import(ctx, []p2http.Registration{kept("a")}, false)
	wantCode(t, err, p2http.EUNAVAILABLE)
	_, err = d.AllMeta(ctx)
	wantCode(t, err, p2http.EUNAVAILABLE)
}
