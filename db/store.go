package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/p2http/p2http"
)

var (
	_ p2http.Store  = (*DB)(nil)
	_ p2http.Keeper = (*DB)(nil)
)

// The statements of the Store, written with ? and rebound for PostgreSQL.
const (
	sqlRegister = `INSERT INTO registrations
	(app, service, device, domain, token, node, secret_kind, secret_enc, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (app, service, device) DO UPDATE
	SET token = excluded.token, updated_at = excluded.updated_at
	RETURNING ` + registrationColumns

	// sqlRegisterPostgres is sqlRegister telling whether the row was
	// inserted (a row version with no deleting or locking transaction, xmax
	// 0, is a fresh insert; an upsert's update sets xmax).
	sqlRegisterPostgres = sqlRegister + `, (xmax = 0) AS inserted`

	sqlUnregister = `DELETE FROM registrations WHERE app = ? AND service = ? AND device = ? RETURNING node`

	sqlLookup = `SELECT ` + registrationColumns + ` FROM registrations WHERE node = ?`

	sqlRemoveDead = `DELETE FROM registrations WHERE node = ? AND updated_at < ?`

	// sqlRecordPushes adds each pushed node's record to its history
	// (p2http.PushHistory.Add) in one statement: the records come as one
	// JSON array of [node, pushes, at, outcome, failed_at, reason] (times in
	// unix microseconds, failed_at and reason null when none failed), which
	// json_each reads as a table. Unknown nodes match no row.
	sqlRecordPushes = `UPDATE registrations SET ` + recordPushesSet + `
	FROM (SELECT value->>0 AS node, value->>1 AS pushes, value->>2 AS at, value->>3 AS outcome,
		value->>4 AS failed_at, value->>5 AS reason FROM json_each(?)) AS u
	WHERE registrations.node = u.node`

	// sqlRecordPushesArray is sqlRecordPushes for PostgreSQL, with one
	// array a column: one statement for any number of nodes, which can be
	// prepared once.
	sqlRecordPushesArray = `UPDATE registrations SET ` + recordPushesSet + `
	FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::text[])
		AS u(node, pushes, at, outcome, failed_at, reason)
	WHERE registrations.node = u.node`

	// recordPushesSet is p2http.PushHistory.Add in SQL: the count grows,
	// and the last push and the last failure are the record's where the
	// record's are as late or later (another instance may have written a
	// later one meanwhile).
	recordPushesSet = `push_count = push_count + u.pushes,
	last_push_at = CASE WHEN last_push_at IS NULL OR u.at >= last_push_at THEN u.at ELSE last_push_at END,
	last_push_outcome = CASE WHEN last_push_at IS NULL OR u.at >= last_push_at THEN u.outcome ELSE last_push_outcome END,
	last_failure_at = CASE WHEN u.failed_at IS NOT NULL AND (last_failure_at IS NULL OR u.failed_at >= last_failure_at)
		THEN u.failed_at ELSE last_failure_at END,
	last_failure_reason = CASE WHEN u.failed_at IS NOT NULL AND (last_failure_at IS NULL OR u.failed_at >= last_failure_at)
		THEN u.reason ELSE last_failure_reason END`

	// sqlNotify tells every instance to forget a node (see cache.go).
	sqlNotify = `SELECT pg_notify($1, $2)`
)

// stmts are the statements of the hot paths (a push's look-up, the
// registration upsert, unregistration, dead-token removal, the push
// records), prepared once on PostgreSQL. lib/pq sends a query with parameters as a parse, then
// an execution, waiting for the answer of each: two round trips. A prepared
// statement is parsed once per connection and then executed in one round
// trip. database/sql prepares a statement again, transparently, on every
// connection it is used on, so statements survive lost connections and a
// restarted server (a connection that died is replaced, and the statement
// is prepared on its successor on first use).
//
// The statements are named per connection (lib/pq's default): a connection
// pooler between p2http and PostgreSQL must therefore keep sessions
// (PgBouncer's session mode), as it must anyway for LISTEN.
type stmts struct {
	register, unregister, lookup, removeDead, recordPushes *sqlx.Stmt
}

// prepare prepares d's statements on PostgreSQL, and starts the notifier
// of cache invalidations (see notify.go) on dsn; on SQLite, which parses a
// statement in microseconds and in process, the queries are sent as they
// are. Until it ran (a pool that was never opened with Open) the plain
// queries are used too.
func (d *DB) prepare(ctx context.Context, dsn string) error {
	if d.driver != DriverPostgres {
		return nil
	}
	ctx, cancel := d.call(ctx)
	defer cancel()
	var st stmts
	for _, p := range []struct {
		st    **sqlx.Stmt
		query string
	}{
		{&st.register, d.x.Rebind(sqlRegisterPostgres)},
		{&st.unregister, d.x.Rebind(sqlUnregister)},
		{&st.lookup, d.x.Rebind(sqlLookup)},
		{&st.removeDead, d.x.Rebind(sqlRemoveDead)},
		{&st.recordPushes, sqlRecordPushesArray},
	} {
		var err error
		if *p.st, err = d.x.PreparexContext(ctx, p.query); err != nil {
			return d.fail("prepare", err)
		}
	}
	n, err := newNotifier(ctx, dsn)
	if err != nil {
		return d.fail("prepare", err)
	}
	d.st, d.notifier = &st, n
	return nil
}

// queryRow runs a statement returning one row: prepared when there is one,
// else the query text, rebound for the driver.
func (d *DB) queryRow(ctx context.Context, st *sqlx.Stmt, query string, args ...any) *sqlx.Row {
	if st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return d.x.QueryRowxContext(ctx, d.x.Rebind(query), args...)
}

// exec runs a statement returning no rows, prepared when there is one.
func (d *DB) exec(ctx context.Context, st *sqlx.Stmt, query string, args ...any) (sql.Result, error) {
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.x.ExecContext(ctx, d.x.Rebind(query), args...)
}

// noStmts is the empty set of statements of a database without prepared
// ones.
var noStmts stmts

// prepared returns the statements, or an empty set before prepare.
func (d *DB) prepared() *stmts {
	if d.st == nil {
		return &noStmts
	}
	return d.st
}

// registrationColumns are the columns a registration is read from.
const registrationColumns = `app, service, device, domain, token, node, secret_kind, secret_enc, created_at, updated_at, last_push_at,
	push_count, last_push_outcome, last_failure_at, last_failure_reason`

// row is a registration as the database returns it, read with sqlx's
// StructScan by the db tags.
//
// The hot paths read it with StructScan too. A scan written by hand, field
// by field, saves 2 allocations and about 290 bytes per row (db
// BenchmarkLookupUncached and BenchmarkRegister), but no CPU time that can
// be measured: BenchmarkLookupUncached/sqlite, in process, took 22.7 µs of
// CPU per look-up with it and 21.5 µs without (medians of 6 rounds,
// alternated, spread ±2 µs), and a push only reads a row when the cache
// misses (docs/performance.md, change 24).
type row struct {
	App        string        `db:"app"`
	Service    string        `db:"service"`
	Device     string        `db:"device"`
	Domain     string        `db:"domain"`
	Token      string        `db:"token"`
	Node       string        `db:"node"`
	SecretKind string        `db:"secret_kind"`
	SecretEnc  []byte        `db:"secret_enc"`
	CreatedAt  timestamp     `db:"created_at"`
	UpdatedAt  timestamp     `db:"updated_at"`
	LastPushAt nullTimestamp `db:"last_push_at"`
	// The rest of the push history.
	PushCount         int64          `db:"push_count"`
	LastPushOutcome   sql.NullString `db:"last_push_outcome"`
	LastFailureAt     nullTimestamp  `db:"last_failure_at"`
	LastFailureReason sql.NullString `db:"last_failure_reason"`
	// Inserted is read by the PostgreSQL upsert only: whether it inserted.
	Inserted bool `db:"inserted"`
}

func (r *row) registration() p2http.Registration {
	var secret []byte
	if len(r.SecretEnc) > 0 {
		secret = r.SecretEnc
	}
	return p2http.Registration{
		App:        p2http.App(r.App),
		Service:    p2http.Service(r.Service),
		Device:     r.Device,
		Domain:     r.Domain,
		Token:      r.Token,
		Node:       r.Node,
		SecretKind: p2http.SecretKind(r.SecretKind),
		SecretEnc:  secret,
		CreatedAt:  r.CreatedAt.Time,
		UpdatedAt:  r.UpdatedAt.Time,
		PushHistory: p2http.PushHistory{
			Recorded:          true,
			Pushes:            r.PushCount,
			LastPushAt:        r.LastPushAt.Time,
			LastOutcome:       outcomeOf(r.LastPushOutcome.String),
			LastFailureAt:     r.LastFailureAt.Time,
			LastFailureReason: r.LastFailureReason.String,
		},
	}
}

// outcomeOf returns the outcome s names, as the constant: a cached
// registration then holds no string of its own for it.
func outcomeOf(s string) p2http.PushOutcome {
	for _, o := range []p2http.PushOutcome{p2http.PushDelivered, p2http.PushCoalesced, p2http.PushFailed} {
		if s == string(o) {
			return o
		}
	}
	return p2http.PushOutcome(s)
}

// Register inserts r or, when r.App, r.Service and r.Device are registered
// already, replaces that row's token and update time only, keeping its node,
// domain, secret and creation time. It returns the stored registration and
// whether this call created it.
//
// r.Node must be a freshly generated node: created is true exactly when the
// stored node is r.Node. Concurrent first registrations of one device yield
// one row, and all callers get its node. When r.Node already belongs to
// another registration, the error wraps ErrNodeTaken: generate a new node and
// try again.
//
// An empty r.App means p2http.DefaultApp and an empty r.SecretKind
// p2http.SecretDerived. Zero r.UpdatedAt means now, zero r.CreatedAt means
// r.UpdatedAt; times are stored to the microsecond. r.PushHistory is
// ignored: a new registration has none, and registering again keeps the
// device's (see p2http.PushHistory).
// A registration that p2http.Registration.Validate refuses gives its
// EINVALID error.
func (d *DB) Register(ctx context.Context, r p2http.Registration) (stored p2http.Registration, created bool, err error) {
	r.App = r.App.OrDefault()
	if r.SecretKind == "" {
		r.SecretKind = p2http.SecretDerived
	}
	if err := r.Validate(); err != nil {
		return p2http.Registration{}, false, err
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = time.Now()
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = r.UpdatedAt
	}
	var secret any // NULL unless kept
	if len(r.SecretEnc) > 0 {
		secret = r.SecretEnc
	}

	ctx, cancel := d.call(ctx)
	defer cancel()
	var got row
	query := sqlRegister
	if d.driver == DriverPostgres {
		query = sqlRegisterPostgres
	}
	err = d.queryRow(ctx, d.prepared().register, query,
		string(r.App), string(r.Service), r.Device, r.Domain, r.Token, r.Node,
		string(r.SecretKind), secret, d.timeArg(r.CreatedAt), d.timeArg(r.UpdatedAt),
	).StructScan(&got)
	switch {
	case err != nil && isNodeTaken(err):
		return p2http.Registration{}, false, errNodeTaken()
	case err != nil:
		return p2http.Registration{}, false, d.fail("register", err)
	}
	stored = got.registration()
	if !got.Inserted {
		// A new token for a known node: every cache must forget the node. A
		// row inserted just now is in no cache (misses are not cached), so
		// a first registration on PostgreSQL costs no notification. SQLite
		// does not say, and only has the local cache to forget.
		d.invalidate(ctx, stored.Node)
	}
	return stored, stored.Node == r.Node, nil
}

// Unregister removes the registration of app (empty means
// p2http.DefaultApp), service and device; ENOTFOUND when there was none.
func (d *DB) Unregister(ctx context.Context, app p2http.App, service p2http.Service, device string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var node string
	err := d.queryRow(ctx, d.prepared().unregister, sqlUnregister, string(app.OrDefault()), string(service), device).Scan(&node)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p2http.Errorf(p2http.ENOTFOUND, "registration not found")
	case err != nil:
		return d.fail("unregister", err)
	}
	d.invalidate(ctx, node)
	return nil
}

// Lookup returns the registration holding node; ENOTFOUND when none does.
func (d *DB) Lookup(ctx context.Context, node string) (p2http.Registration, error) {
	if reg, ok, stale := d.cache.get(node, time.Now()); ok {
		if stale != nil {
			d.refresh(node, stale)
		}
		return reg, nil
	}
	reg, _, err := d.load(ctx, node)
	return reg, err
}

// load reads the registration holding node from the database and caches
// it; cached reports whether it did (not when an invalidation raced the
// read, nor with the cache off).
func (d *DB) load(ctx context.Context, node string) (reg p2http.Registration, cached bool, err error) {
	gen := d.cache.gen.Load()
	ctx, cancel := d.call(ctx)
	defer cancel()
	var got row
	err = d.queryRow(ctx, d.prepared().lookup, sqlLookup, node).StructScan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p2http.Registration{}, false, p2http.Errorf(p2http.ENOTFOUND, "unknown node")
	case err != nil:
		return p2http.Registration{}, false, d.fail("lookup", err)
	}
	reg = got.registration()
	return reg, d.cache.put(reg, gen, time.Now()), nil
}

// RemoveDead removes the registration holding node when it was last updated
// strictly before the given time (when its token was reported dead), and
// reports whether it did. A registration updated since then keeps its new
// token.
func (d *DB) RemoveDead(ctx context.Context, node string, before time.Time) (bool, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	res, err := d.exec(ctx, d.prepared().removeDead, sqlRemoveDead, node, d.timeArg(before))
	if err != nil {
		return false, d.fail("remove dead", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, d.fail("remove dead", err)
	}
	if n > 0 {
		d.invalidate(ctx, node)
	}
	return n > 0, nil
}

// RecordPushes adds each record to its node's push history
// (p2http.PushHistory.Add) in one statement, and to the cached
// registrations. Nodes that are not registered (any more) are skipped. The
// relay calls it about once a second with the nodes whose pushes are worth
// a write (see relay's push log): every record writes a new version of its
// row, and a row written once per push made the table grow to about twice
// its size and, on a million rows, caused most of the tail latency of
// pushes (docs/performance.md, change 14). Each node must appear once.
func (d *DB) RecordPushes(ctx context.Context, recs ...p2http.PushRecord) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := d.call(ctx)
	defer cancel()
	var err error
	if d.driver == DriverPostgres {
		_, err = d.exec(ctx, d.prepared().recordPushes, sqlRecordPushesArray, recordArrays(recs)...)
	} else {
		var arg []byte
		if arg, err = recordJSON(recs); err == nil {
			_, err = d.x.ExecContext(ctx, sqlRecordPushes, string(arg))
		}
	}
	if err != nil {
		return d.fail("record pushes", err)
	}
	d.cache.recorded(recs)
	return nil
}

// recordArrays are the arguments of sqlRecordPushesArray: one array a
// column, NULL where no push failed.
func recordArrays(recs []p2http.PushRecord) []any {
	n := len(recs)
	nodes, outcomes, reasons := make([]string, n), make([]string, n), make([]sql.NullString, n)
	pushes, at, failed := make([]int64, n), make([]time.Time, n), make([]sql.NullTime, n)
	for i, r := range recs {
		nodes[i], pushes[i], at[i], outcomes[i] = r.Node, r.Pushes, r.At.UTC().Truncate(time.Microsecond), string(r.Outcome)
		if !r.FailedAt.IsZero() {
			failed[i] = sql.NullTime{Time: r.FailedAt.UTC().Truncate(time.Microsecond), Valid: true}
			reasons[i] = sql.NullString{String: r.FailureReason, Valid: true}
		}
	}
	return []any{pq.StringArray(nodes), pq.Int64Array(pushes), pq.Array(at),
		pq.StringArray(outcomes), pq.Array(failed), pq.Array(reasons)}
}

// recordJSON is the argument of sqlRecordPushes: the records as one JSON
// array of rows, times in unix microseconds as SQLite stores them.
func recordJSON(recs []p2http.PushRecord) ([]byte, error) {
	rows := make([][6]any, len(recs))
	for i, r := range recs {
		rows[i] = [6]any{r.Node, r.Pushes, r.At.UnixMicro(), string(r.Outcome), nil, nil}
		if !r.FailedAt.IsZero() {
			rows[i][4], rows[i][5] = r.FailedAt.UnixMicro(), r.FailureReason
		}
	}
	return json.Marshal(rows)
}
