package db_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
)

// On PostgreSQL, recording push times (and new tokens) updates rows in place:
// the pages of registrations keep room for a new version of some of their
// rows (migration 000002), so the new version is written on the same page,
// as a heap-only tuple that adds no index entries. On packed pages the
// updated rows would move to other pages.
func TestPushTimesUpdateInPlace(t *testing.T) {
	ctx := ctxT(t)
	url := dbtest.PostgresSchemaURL(t)
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	// Enough rows, with tokens as long as FCM's, to fill several pages.
	const n = 300
	for i := range n {
		r := reg(fmt.Sprintf("u%d", i))
		r.Token = strings.Repeat("t", 163)
		if _, _, err := d.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	page := func(node string) int {
		var p int
		if err := raw.QueryRowContext(ctx, `SELECT (ctid::text::point)[0]::int FROM registrations WHERE node = $1`, node).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Two rows of each page are pushed, as pushes to random nodes among
	// many do.
	rows, err := raw.QueryContext(ctx, `SELECT node, p FROM (
		SELECT node, p, row_number() OVER (PARTITION BY p ORDER BY node) AS k
		FROM (SELECT node, (ctid::text::point)[0]::int AS p FROM registrations) AS r) AS s WHERE k <= 2`)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	var pushed []string
	for rows.Next() {
		var node string
		var p int
		if err := rows.Scan(&node, &p); err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, node)
		before[node] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pushed) < 6 {
		t.Fatalf("the rows fill %d pages; the test needs several full ones", len(pushed)/2)
	}
	// Half of them failed: the row grows most by a reason.
	var recs []p2http.PushRecord
	for i, node := range pushed {
		rec := p2http.PushRecord{Node: node, Pushes: 3, At: time.Now(), Outcome: p2http.PushDelivered}
		if i%2 == 0 {
			rec = failedPush(node, time.Now(), "THIRD_PARTY_AUTH_ERROR")
		}
		recs = append(recs, rec)
	}
	if err := d.RecordPushes(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for _, node := range pushed {
		if got := page(node); got != before[node] {
			t.Errorf("node %s moved from page %d to page %d when its push time was recorded", node, before[node], got)
		}
		reg, err := d.Lookup(ctx, node)
		if err != nil || reg.LastPushAt == nil {
			t.Fatalf("push time of %s not recorded: %v", node, err)
		}
	}
	var ff pq.StringArray
	if err := raw.QueryRowContext(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'registrations'::regclass`).Scan(&ff); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(ff, ","), "fillfactor=90") {
		t.Errorf("registrations options %v, want fillfactor=90", ff)
	}
}
