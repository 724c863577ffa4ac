package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/p2http/p2http"
)

// This file holds what the admin commands of cmd/p2http need beyond the
// Store: bulk import of registrations (from p2), copying a database into
// another, statistics, and purging registrations not seen for a long time.
//
// Bulk writes keep the registration cache correct as far as one process
// can: Purge and CopyTo empty the cache of the *DB they write through and,
// on PostgreSQL, notify every changed node on the invalidation channel in
// the same transaction, so that every p2http instance listening there
// forgets it. An instance whose listening connection is down has its cache
// off; a write made by another process on SQLite reaches the cache of a
// running p2http only through its time to live, at most 36 s (see
// cache.go).

// MetaKeyFingerprint is the meta key under which the fingerprint of the
// server key is pinned at first start.
const MetaKeyFingerprint = "secret_key_fingerprint"

// ErrFingerprintMismatch is the cause of a CopyTo refused because the target
// database was first used with another server key than the source.
var ErrFingerprintMismatch = errors.New("the target database was first used with another server key")

// MaxCopyBatch bounds the rows one statement of CopyTo and Import writes:
// 15 parameters a row stay below SQLite's 32766 and PostgreSQL's 65535.
const MaxCopyBatch = 2000

// defaultBatch is the batch size used when none is given.
const defaultBatch = 500

// AdminCallTimeout bounds each statement of the admin functions on
// PostgreSQL (a statistics scan of a large table, a batch of a copy), in
// place of PostgresCallTimeout, which is sized for the hot path.
const AdminCallTimeout = 5 * time.Minute

// adminCall bounds one admin statement on PostgreSQL by AdminCallTimeout.
func (d *DB) adminCall(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.driver != DriverPostgres {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, AdminCallTimeout)
}

// withDefaults fills what Register fills: the default app, a derived secret,
// and times of now.
func withDefaults(r p2http.Registration, now time.Time) p2http.Registration {
	r.App = r.App.OrDefault()
	if r.SecretKind == "" {
		r.SecretKind = p2http.SecretDerived
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = r.UpdatedAt
	}
	return r
}

// ImportOutcome says what Import did with one registration.
type ImportOutcome uint8

// The outcomes of Import.
const (
	// ImportInserted: the registration was new here and was inserted (or,
	// in a dry run, would have been).
	ImportInserted ImportOutcome = iota + 1
	// ImportAlreadyPresent: the app and device are registered here with
	// this very node — an earlier import. Nothing changed.
	ImportAlreadyPresent
	// ImportTokenUpdated: as ImportAlreadyPresent, but the token differs
	// and the stored registration is as an earlier import left it (the
	// phone has not registered with p2http since: its update time is still
	// its creation time). The token was replaced, and both times set to
	// now, so the registration stays "as imported". A phone that did
	// register here since keeps its token: it is newer than any in p2.
	ImportTokenUpdated
	// ImportDeviceRegistered: the app and device are registered here with
	// another node: the phone registered with p2http since, and its XMPP
	// server holds that newer node. The stored registration was kept.
	ImportDeviceRegistered
	// ImportNodeTaken: another registration here holds the node. The stored
	// one was kept.
	ImportNodeTaken
)

// String names the outcome.
func (o ImportOutcome) String() string {
	switch o {
	case ImportInserted:
		return "inserted"
	case ImportAlreadyPresent:
		return "already-present"
	case ImportTokenUpdated:
		return "token-updated"
	case ImportDeviceRegistered:
		return "device-registered"
	case ImportNodeTaken:
		return "node-taken"
	}
	return fmt.Sprintf("ImportOutcome(%d)", uint8(o))
}

const registrationInsertColumns = `app, service, device, domain, token, node, secret_kind, secret_enc, created_at, updated_at, last_push_at,
	push_count, last_push_outcome, last_failure_at, last_failure_reason`

// insertColumnCount is the number of registrationInsertColumns.
const insertColumnCount = 15

// insertRows returns a multi-row INSERT of n registrations, with ? marks.
func insertRows(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO registrations (` + registrationInsertColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?" + strings.Repeat(", ?", insertColumnCount-1) + ")")
	}
	return b.String()
}

// insertArgs appends the arguments of one row of insertRows.
func (d *DB) insertArgs(args []any, r p2http.Registration) []any {
	var secret any // NULL unless kept
	if len(r.SecretEnc) > 0 {
		secret = r.SecretEnc
	}
	var lastPush, outcome, failedAt, reason any // NULL unless known
	if r.LastPushAt != nil {
		lastPush = d.timeArg(*r.LastPushAt)
	}
	if r.LastOutcome != "" {
		outcome = string(r.LastOutcome)
	}
	if r.LastFailureAt != nil {
		failedAt, reason = d.timeArg(*r.LastFailureAt), r.LastFailureReason
	}
	return append(args, string(r.App), string(r.Service), r.Device, r.Domain, r.Token, r.Node,
		string(r.SecretKind), secret, d.timeArg(r.CreatedAt), d.timeArg(r.UpdatedAt), lastPush,
		r.Pushes, outcome, failedAt, reason)
}

// Import inserts the registrations that are new here and leaves what is
// already stored alone, but for the token of a registration an earlier
// import wrote and nothing changed since. It reports, for each registration
// in order, what it did (see ImportOutcome): a device already registered
// under the same app — with any service — is never replaced, and neither is
// a registration that holds the same node. Importing the same registrations
// twice therefore changes nothing the second time. Registrations repeated
// within regs are judged against the earlier ones.
//
// Defaults are those of Register; r.PushHistory is stored as it is. Every
// registration is validated first (p2http.Registration.Validate); an
// invalid one fails the whole call with EINVALID naming its index. Registrations are written in transactions of a
// few hundred; an error leaves the batches before it imported. With dryRun
// nothing is written and the outcomes say what would have happened.
//
// Inserting new nodes cannot make a cached registration stale; a replaced
// token is invalidated as Register does.
func (d *DB) Import(ctx context.Context, regs []p2http.Registration, dryRun bool) ([]ImportOutcome, error) {
	now := time.Now()
	all := make([]p2http.Registration, len(regs))
	for i, r := range regs {
		r = withDefaults(r, now)
		if err := r.Validate(); err != nil {
			return nil, &p2http.Error{Code: p2http.EINVALID, Message: fmt.Sprintf("registration %d: %s", i, p2http.ErrorMessage(err)), Err: err}
		}
		all[i] = r
	}
	out := make([]ImportOutcome, 0, len(all))
	for len(all) > 0 {
		chunk := all[:min(len(all), defaultBatch)]
		all = all[len(chunk):]
		got, err := d.importChunk(ctx, chunk, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// appDevice keys a device within an app.
type appDevice struct{ app, device string }

func (d *DB) importChunk(ctx context.Context, regs []p2http.Registration, dryRun bool) ([]ImportOutcome, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	tx, err := d.x.BeginTxx(ctx, nil)
	if err != nil {
		return nil, d.fail("import", err)
	}
	defer tx.Rollback()

	out := make([]ImportOutcome, len(regs))
	if err := d.classify(ctx, tx, regs, out); err != nil {
		return nil, err
	}
	var fresh, renew []int // indexes of regs to insert, to update
	for i, o := range out {
		switch o {
		case ImportInserted:
			fresh = append(fresh, i)
		case ImportTokenUpdated:
			renew = append(renew, i)
		}
	}
	if dryRun || len(fresh)+len(renew) == 0 {
		return out, nil
	}
	var renewed []string
	for _, i := range renew {
		r := regs[i]
		now := d.timeArg(time.Now())
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE registrations SET token = ?, created_at = ?, updated_at = ?
			WHERE app = ? AND device = ? AND node = ? AND created_at = updated_at`),
			r.Token, now, now, string(r.App), r.Device, r.Node)
		if err != nil {
			return nil, d.fail("import", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, d.fail("import", err)
		} else if n == 0 { // re-registered since the classification
			out[i] = ImportAlreadyPresent
			continue
		}
		renewed = append(renewed, r.Node)
	}
	if len(fresh) == 0 {
		return out, d.commitImport(ctx, tx, renewed)
	}

	args := make([]any, 0, len(fresh)*insertColumnCount)
	for _, i := range fresh {
		args = d.insertArgs(args, regs[i])
	}
	rows, err := tx.QueryxContext(ctx, tx.Rebind(insertRows(len(fresh))+` ON CONFLICT DO NOTHING RETURNING node`), args...)
	if err != nil {
		return nil, d.fail("import", err)
	}
	inserted := map[string]bool{}
	for rows.Next() {
		var node string
		if err := rows.Scan(&node); err != nil {
			rows.Close()
			return nil, d.fail("import", err)
		}
		inserted[node] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, d.fail("import", err)
	}
	// A row written by a concurrent registration since the classification
	// made the insert a no-op: say why, as the classification would now.
	var lost []p2http.Registration
	var lostAt []int
	for _, i := range fresh {
		if !inserted[regs[i].Node] {
			lost = append(lost, regs[i])
			lostAt = append(lostAt, i)
		}
	}
	if len(lost) > 0 {
		again := make([]ImportOutcome, len(lost))
		if err := d.classify(ctx, tx, lost, again); err != nil {
			return nil, err
		}
		for j, i := range lostAt {
			switch out[i] = again[j]; out[i] {
			case ImportInserted: // cannot be, but never claim an insert that did not happen
				out[i] = ImportNodeTaken
			case ImportTokenUpdated: // registered meanwhile: theirs is newer
				out[i] = ImportAlreadyPresent
			}
		}
	}
	return out, d.commitImport(ctx, tx, renewed)
}

// commitImport commits an import's transaction, invalidating the nodes whose
// token it replaced.
func (d *DB) commitImport(ctx context.Context, tx *sqlx.Tx, renewed []string) error {
	if err := d.notifyTx(ctx, tx, renewed); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return d.fail("import", err)
	}
	for _, n := range renewed {
		d.cache.forget(n)
	}
	return nil
}

// classify sets out[i] to what importing regs[i] would do given what tx
// sees, judging repeats within regs against the earlier ones.
func (d *DB) classify(ctx context.Context, tx *sqlx.Tx, regs []p2http.Registration, out []ImportOutcome) error {
	// The stored nodes of the chunk's devices, per app; both services are
	// asked separately so that the (app, service, device) index serves.
	devices := map[string][]string{}
	for _, r := range regs {
		devices[string(r.App)] = append(devices[string(r.App)], r.Device)
	}
	type stored struct {
		node, token string
		untouched   bool // updated_at = created_at: as an import left it
	}
	storedDev := map[appDevice][]stored{}
	for app, devs := range devices {
		for _, svc := range p2http.Services {
			q, args, err := sqlx.In(`SELECT device, node, token, created_at, updated_at FROM registrations
				WHERE app = ? AND service = ? AND device IN (?)`, app, string(svc), devs)
			if err != nil {
				return d.fail("import", err)
			}
			var got []struct {
				Device    string    `db:"device"`
				Node      string    `db:"node"`
				Token     string    `db:"token"`
				CreatedAt timestamp `db:"created_at"`
				UpdatedAt timestamp `db:"updated_at"`
			}
			if err := tx.SelectContext(ctx, &got, tx.Rebind(q), args...); err != nil {
				return d.fail("import", err)
			}
			for _, g := range got {
				k := appDevice{app, g.Device}
				storedDev[k] = append(storedDev[k], stored{g.Node, g.Token, g.CreatedAt.Time.Equal(g.UpdatedAt.Time)})
			}
		}
	}
	nodes := make([]string, len(regs))
	for i, r := range regs {
		nodes[i] = r.Node
	}
	q, args, err := sqlx.In(`SELECT node FROM registrations WHERE node IN (?)`, nodes)
	if err != nil {
		return d.fail("import", err)
	}
	var taken []string
	if err := tx.SelectContext(ctx, &taken, tx.Rebind(q), args...); err != nil {
		return d.fail("import", err)
	}
	storedNode := map[string]bool{}
	for _, n := range taken {
		storedNode[n] = true
	}

	for i, r := range regs {
		k := appDevice{string(r.App), r.Device}
		have := storedDev[k]
		same := slices.IndexFunc(have, func(s stored) bool { return s.node == r.Node })
		switch {
		case same >= 0 && have[same].untouched && have[same].token != r.Token:
			out[i] = ImportTokenUpdated
			// A repeat in this chunk does not update again.
			have[same].untouched = false
		case same >= 0:
			out[i] = ImportAlreadyPresent
		case len(have) > 0:
			out[i] = ImportDeviceRegistered
		case storedNode[r.Node]:
			out[i] = ImportNodeTaken
		default:
			out[i] = ImportInserted
			// Later repeats in this chunk meet this one as stored.
			storedDev[k] = append(storedDev[k], stored{node: r.Node, token: r.Token})
			storedNode[r.Node] = true
		}
	}
	return nil
}

// CopyReport counts what CopyTo did.
type CopyReport struct {
	// Registrations read from the source.
	Registrations int64 `json:"registrations"`
	// Written: new in the target, or newer in the source (by update time
	// or push history) and updated.
	Written int64 `json:"written"`
	// Unchanged: already in the target, as recent as in the source.
	Unchanged int64 `json:"unchanged"`
	// NodeConflicts: the node belongs to another registration in the
	// target; not copied.
	NodeConflicts int64 `json:"node_conflicts"`
	// Meta rows new in the target.
	Meta int64 `json:"meta"`
}

// sqlCopyUpsert completes insertRows for CopyTo: a registration already in
// the target (same app, service and device) takes the source's fields only
// when the source's row was updated later, its last push (time and
// outcome) and its last failure (time and reason) where the source's are
// later, the larger of the two push counts, its creation time when the
// source's is earlier, and is not touched at all otherwise — so a second
// copy writes nothing.
const sqlCopyUpsert = ` ON CONFLICT (app, service, device) DO UPDATE SET
	domain = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.domain ELSE registrations.domain END,
	token = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.token ELSE registrations.token END,
	node = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.node ELSE registrations.node END,
	secret_kind = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.secret_kind ELSE registrations.secret_kind END,
	secret_enc = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.secret_enc ELSE registrations.secret_enc END,
	created_at = CASE WHEN excluded.created_at < registrations.created_at THEN excluded.created_at ELSE registrations.created_at END,
	updated_at = CASE WHEN excluded.updated_at > registrations.updated_at THEN excluded.updated_at ELSE registrations.updated_at END,
	last_push_at = CASE WHEN ` + copyLaterPush + ` THEN excluded.last_push_at ELSE registrations.last_push_at END,
	last_push_outcome = CASE WHEN ` + copyLaterPush + ` THEN excluded.last_push_outcome ELSE registrations.last_push_outcome END,
	last_failure_at = CASE WHEN ` + copyLaterFailure + ` THEN excluded.last_failure_at ELSE registrations.last_failure_at END,
	last_failure_reason = CASE WHEN ` + copyLaterFailure + ` THEN excluded.last_failure_reason ELSE registrations.last_failure_reason END,
	push_count = CASE WHEN excluded.push_count > registrations.push_count THEN excluded.push_count ELSE registrations.push_count END
	WHERE excluded.updated_at > registrations.updated_at
		OR excluded.created_at < registrations.created_at
		OR ` + copyLaterPush + `
		OR ` + copyLaterFailure + `
		OR excluded.push_count > registrations.push_count
	RETURNING node`

// copyLaterPush and copyLaterFailure say, in sqlCopyUpsert, that the
// source's last push (last failure) is later than the target's.
const (
	copyLaterPush = `(excluded.last_push_at IS NOT NULL AND
		(registrations.last_push_at IS NULL OR excluded.last_push_at > registrations.last_push_at))`
	copyLaterFailure = `(excluded.last_failure_at IS NOT NULL AND
		(registrations.last_failure_at IS NULL OR excluded.last_failure_at > registrations.last_failure_at))`
)

// AllMeta returns every meta row.
func (d *DB) AllMeta(ctx context.Context) (map[string]string, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	var rows []struct {
		Key   string `db:"key"`
		Value string `db:"value"`
	}
	if err := d.x.SelectContext(ctx, &rows, `SELECT key, value FROM meta`); err != nil {
		return nil, d.fail("read meta", err)
	}
	m := make(map[string]string, len(rows))
	for _, r := range rows {
		m[r.Key] = r.Value
	}
	return m, nil
}

// CopyTo copies every meta row and every registration of d into dst, in
// batches of batch rows (0 means 500, at most MaxCopyBatch), and calls
// progress, when not nil, after each batch.
//
// It refuses, before writing anything, when both databases pin a server key
// fingerprint and the two differ (the error wraps ErrFingerprintMismatch):
// kept secrets would not open and derived secrets would differ. Meta rows
// already in dst are kept. A registration already in dst (same app, service
// and device) is updated only with what is newer in d (see sqlCopyUpsert);
// one whose node belongs to another registration in dst is counted in
// NodeConflicts and skipped. Copying twice therefore writes nothing the
// second time. Registrations in dst that d does not have are kept.
//
// Every registration read is held to p2http.Registration.Validate before
// it is written, as every writer is: an invalid one stops the copy with
// EINVALID naming its row id, the batches before it copied.
//
// Rows are read in id order; a row that d changes after it was read is
// caught by the next run. Nodes whose registration changed in dst are
// forgotten by dst's cache and, on PostgreSQL, notified to other instances.
func (d *DB) CopyTo(ctx context.Context, dst *DB, batch int, progress func(CopyReport)) (CopyReport, error) {
	var rep CopyReport
	if batch <= 0 {
		batch = defaultBatch
	}
	batch = min(batch, MaxCopyBatch)

	srcMeta, err := d.AllMeta(ctx)
	if err != nil {
		return rep, err
	}
	dstMeta, err := dst.AllMeta(ctx)
	if err != nil {
		return rep, err
	}
	if s, t := srcMeta[MetaKeyFingerprint], dstMeta[MetaKeyFingerprint]; s != "" && t != "" && s != t {
		return rep, &p2http.Error{Code: p2http.EINVALID, Err: ErrFingerprintMismatch,
			Message: "the target database was first used with another server key; refusing to copy"}
	}
	keys := make([]string, 0, len(srcMeta))
	for k := range srcMeta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		n, err := dst.insertMeta(ctx, k, srcMeta[k])
		if err != nil {
			return rep, err
		}
		rep.Meta += n
	}

	var after int64
	for {
		regs, last, err := d.readBatch(ctx, after, batch)
		if err != nil {
			return rep, err
		}
		if len(regs) == 0 {
			return rep, nil
		}
		after = last
		rep.Registrations += int64(len(regs))
		written, conflicts, err := dst.upsertBatch(ctx, regs)
		if err != nil {
			return rep, err
		}
		rep.Written += written
		rep.NodeConflicts += conflicts
		rep.Unchanged += int64(len(regs)) - written - conflicts
		if progress != nil {
			progress(rep)
		}
	}
}

// insertMeta stores key unless it exists and reports whether it did.
func (d *DB) insertMeta(ctx context.Context, key, value string) (int64, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	res, err := d.x.ExecContext(ctx, d.x.Rebind(sqlEnsureMeta), key, value)
	if err != nil {
		return 0, d.fail("copy meta", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, d.fail("copy meta", err)
	}
	return n, nil
}

// readBatch reads up to n registrations with an id above after, in id
// order, checks each (p2http.Registration.Validate), and returns the last
// id read.
func (d *DB) readBatch(ctx context.Context, after int64, n int) ([]p2http.Registration, int64, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	var got []struct {
		ID int64 `db:"id"`
		row
	}
	err := d.x.SelectContext(ctx, &got, d.x.Rebind(`SELECT id, `+registrationColumns+
		` FROM registrations WHERE id > ? ORDER BY id LIMIT ?`), after, n)
	if err != nil {
		return nil, 0, d.fail("copy read", err)
	}
	regs := make([]p2http.Registration, len(got))
	for i := range got {
		regs[i] = got[i].row.registration()
		if err := regs[i].Validate(); err != nil {
			return nil, 0, &p2http.Error{Code: p2http.EINVALID, Err: err,
				Message: fmt.Sprintf("registration id %d of the source: %s", got[i].ID, p2http.ErrorMessage(err))}
		}
		after = got[i].ID
	}
	return regs, after, nil
}

// upsertBatch writes regs with sqlCopyUpsert in one transaction, or row by
// row when a node conflict fails the batch.
func (d *DB) upsertBatch(ctx context.Context, regs []p2http.Registration) (written, conflicts int64, err error) {
	nodes, err := d.upsertTx(ctx, regs)
	if err == nil {
		return int64(len(nodes)), 0, nil
	}
	if !errors.Is(err, ErrNodeTaken) {
		return 0, 0, err
	}
	for _, r := range regs {
		nodes, err := d.upsertTx(ctx, []p2http.Registration{r})
		switch {
		case errors.Is(err, ErrNodeTaken):
			conflicts++
		case err != nil:
			return written, conflicts, err
		default:
			written += int64(len(nodes))
		}
	}
	return written, conflicts, nil
}

// upsertTx runs one upsert of regs in a transaction and returns the nodes
// written, after invalidating them.
func (d *DB) upsertTx(ctx context.Context, regs []p2http.Registration) ([]string, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	tx, err := d.x.BeginTxx(ctx, nil)
	if err != nil {
		return nil, d.fail("copy write", err)
	}
	defer tx.Rollback()
	args := make([]any, 0, len(regs)*insertColumnCount)
	for _, r := range regs {
		args = d.insertArgs(args, r)
	}
	var nodes []string
	if err := tx.SelectContext(ctx, &nodes, tx.Rebind(insertRows(len(regs))+sqlCopyUpsert), args...); err != nil {
		if isNodeTaken(err) {
			return nil, errNodeTaken()
		}
		return nil, d.fail("copy write", err)
	}
	if err := d.notifyTx(ctx, tx, nodes); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, d.fail("copy write", err)
	}
	if len(nodes) > 0 {
		d.cache.reset(d.cache.on.Load())
	}
	return nodes, nil
}

// notifyTx queues, on PostgreSQL, an invalidation of every node for when tx
// commits.
func (d *DB) notifyTx(ctx context.Context, tx *sqlx.Tx, nodes []string) error {
	if d.driver != DriverPostgres || len(nodes) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n`, notifyChannel, pq.Array(nodes)); err != nil {
		return d.fail("notify", err)
	}
	return nil
}

// Stats are counts of the stored registrations.
type Stats struct {
	Total     int64                    `json:"total"`
	ByService map[p2http.Service]int64 `json:"by_service"`
	ByApp     map[string]int64         `json:"by_app"`
	// ByAppService counts each app's registrations per service; every
	// known service is present, with 0 when the app has none.
	ByAppService map[string]map[p2http.Service]int64 `json:"by_app_service"`
	BySecret     map[p2http.SecretKind]int64         `json:"by_secret"`
	// Domains are ordered by Total, largest first, then by name.
	Domains []DomainStats `json:"domains"`
}

// DomainStats counts the registrations of one account domain.
type DomainStats struct {
	Domain    string                   `json:"domain"`
	Total     int64                    `json:"total"`
	ByService map[p2http.Service]int64 `json:"by_service"`
}

// Stats counts the registrations by service, app, app and service, secret
// kind and account domain. Every known service and secret kind is present in the maps, with 0
// when none has it.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	var groups []struct {
		App    string `db:"app"`
		Domain string `db:"domain"`
		Svc    string `db:"service"`
		Kind   string `db:"secret_kind"`
		N      int64  `db:"n"`
	}
	err := d.x.SelectContext(ctx, &groups, `SELECT app, domain, service, secret_kind, COUNT(*) AS n
		FROM registrations GROUP BY app, domain, service, secret_kind`)
	if err != nil {
		return Stats{}, d.fail("stats", err)
	}
	st := Stats{ByService: map[p2http.Service]int64{}, ByApp: map[string]int64{}, BySecret: map[p2http.SecretKind]int64{},
		ByAppService: map[string]map[p2http.Service]int64{}}
	for _, s := range p2http.Services {
		st.ByService[s] = 0
	}
	st.BySecret[p2http.SecretDerived], st.BySecret[p2http.SecretKept] = 0, 0
	domains := map[string]*DomainStats{}
	for _, g := range groups {
		svc := p2http.Service(g.Svc)
		st.Total += g.N
		st.ByService[svc] += g.N
		st.ByApp[g.App] += g.N
		if st.ByAppService[g.App] == nil {
			st.ByAppService[g.App] = make(map[p2http.Service]int64, len(p2http.Services))
			for _, s := range p2http.Services {
				st.ByAppService[g.App][s] = 0
			}
		}
		st.ByAppService[g.App][svc] += g.N
		st.BySecret[p2http.SecretKind(g.Kind)] += g.N
		ds := domains[g.Domain]
		if ds == nil {
			ds = &DomainStats{Domain: g.Domain, ByService: map[p2http.Service]int64{}}
			for _, s := range p2http.Services {
				ds.ByService[s] = 0
			}
			domains[g.Domain] = ds
		}
		ds.Total += g.N
		ds.ByService[svc] += g.N
	}
	st.Domains = make([]DomainStats, 0, len(domains))
	for _, ds := range domains {
		st.Domains = append(st.Domains, *ds)
	}
	slices.SortFunc(st.Domains, func(a, b DomainStats) int {
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Compare(a.Domain, b.Domain)
	})
	return st, nil
}

// inactive selects registrations whose last sign of life — the later of the
// update (registration or re-registration) and the last push, whatever
// became of it (its XMPP server still pushes to it) — is before the
// cut-off (both ? marks take it).
const inactive = `updated_at < ? AND (last_push_at IS NULL OR last_push_at < ?)`

// purgeChunk bounds the rows one DELETE of Purge removes.
const purgeChunk = 1000

// CountInactive counts the registrations Purge(ctx, before) would delete.
func (d *DB) CountInactive(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	var n int64
	t := d.timeArg(before)
	if err := d.x.GetContext(ctx, &n, d.x.Rebind(`SELECT COUNT(*) FROM registrations WHERE `+inactive), t, t); err != nil {
		return 0, d.fail("count inactive", err)
	}
	return n, nil
}

// Purge deletes the registrations whose last sign of life — the later of
// their update time (first registration or re-registration) and their last
// push, delivered or not — is before the given time, and returns how many it
// deleted. It deletes in transactions of a thousand rows, walking the table
// in id order, and checks the condition again in each, so a phone that
// re-registers meanwhile keeps its registration.
//
// Afterwards d's registration cache is emptied and, on PostgreSQL, every
// deleted node has been notified to the other instances in its transaction.
// A p2http serving the same SQLite file from another pool or process keeps
// a cached registration for at most the cache's time to live (36 s); a push
// for it then records nothing when its push is written, if at all.
func (d *DB) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	var after int64
	defer func() {
		if total > 0 {
			d.cache.reset(d.cache.on.Load())
		}
	}()
	for {
		n, last, err := d.purgeChunk(ctx, before, after)
		total += n
		if err != nil || last == 0 {
			return total, err
		}
		after = last
	}
}

// purgeChunk deletes the inactive registrations among the next purgeChunk
// candidates with an id above after; last is the highest id looked at, 0
// when there were none.
func (d *DB) purgeChunk(ctx context.Context, before time.Time, after int64) (n, last int64, err error) {
	ctx, cancel := d.adminCall(ctx)
	defer cancel()
	tx, err := d.x.BeginTxx(ctx, nil)
	if err != nil {
		return 0, 0, d.fail("purge", err)
	}
	defer tx.Rollback()
	t := d.timeArg(before)
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, tx.Rebind(`SELECT id FROM registrations WHERE id > ? AND `+inactive+
		` ORDER BY id LIMIT ?`), after, t, t, purgeChunk); err != nil {
		return 0, 0, d.fail("purge", err)
	}
	if len(ids) == 0 {
		return 0, 0, nil
	}
	q, args, err := sqlx.In(`DELETE FROM registrations WHERE id IN (?) AND `+inactive+` RETURNING node`, ids, t, t)
	if err != nil {
		return 0, 0, d.fail("purge", err)
	}
	var nodes []string
	if err := tx.SelectContext(ctx, &nodes, tx.Rebind(q), args...); err != nil {
		return 0, 0, d.fail("purge", err)
	}
	if err := d.notifyTx(ctx, tx, nodes); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, d.fail("purge", err)
	}
	d.cache.reset(d.cache.on.Load())
	return int64(len(nodes)), ids[len(ids)-1], nil
}
