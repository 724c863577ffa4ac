package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"  // registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite" (the register scenario's ceiling)

	"github.com/p2http/p2http/internal/benchfake"
)

// The registrations the benchmarks push to are written straight into the
// database, in the row shape p2http writes (migrations/*/000001_init.up.sql,
// db/store.go): service fcm, app default, a derived secret. Registration i
// has the node seedNode(i), the device seedDevice(i) and the push token
// benchfake.Token(i); its secret is keyring.Secret(seedNode(i)) under the
// benchmark's server key, so the generator can push to any of them.

// seedNode is the node of seeded registration i: standard Base64 of nine
// bytes (twelve characters with + and /), like p2http.NewNode.
func seedNode(i int) string {
	sum := sha256.Sum256([]byte("n" + strconv.Itoa(i)))
	return base64.StdEncoding.EncodeToString(sum[:9])
}

// seedDevice is the device hash of seeded registration i: 40 lowercase hex
// digits, the shape of p2http.DeviceHash.
func seedDevice(i int) string {
	sum := sha256.Sum256([]byte("d" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])[:40]
}

// PostgreSQL expressions computing seedNode, seedDevice and Token of i.
const (
	sqlSeedNode   = `encode(substring(sha256(convert_to('n' || i, 'UTF8')) from 1 for 9), 'base64')`
	sqlSeedDevice = `left(encode(sha256(convert_to('d' || i, 'UTF8')), 'hex'), 40)`
)

// seedPostgres inserts registrations from to from+n-1 for domain, in
// batches of at most 100,000 rows, then runs VACUUM ANALYZE as a database in
// service would have, and a CHECKPOINT, so that writing out the seed does
// not slow what is measured next.
//
// pushedWithin zero seeds registrations that were never pushed, as after an
// import from p2. Otherwise each has a last-push time spread evenly over the
// pushedWithin before now: the state a database reaches once every device
// has been pushed at least once within that long.
func seedPostgres(ctx context.Context, dsn string, from, n int, domain string, pushedWithin time.Duration) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// 7919 is a prime that divides no spread of whole hours, so i*7919
	// modulo the spread in seconds covers it evenly.
	q := `INSERT INTO registrations (app, service, device, domain, token, node, secret_kind, created_at, updated_at, last_push_at)
		SELECT 'default', 'fcm', ` + sqlSeedDevice + `, $1, ` + benchfake.TokenSQL("i") + `, ` + sqlSeedNode + `,
			'derived', now(), now(),
			CASE WHEN $4::bigint > 0 THEN now() - ((i::bigint * 7919) % $4::bigint) * interval '1 second' END
		FROM generate_series($2::int, $3::int) AS s(i)`
	const batch = 100_000
	for lo := from; lo < from+n; lo += batch {
		hi := min(lo+batch, from+n) - 1
		if _, err := db.ExecContext(ctx, q, domain, lo, hi, int64(pushedWithin/time.Second)); err != nil {
			return fmt.Errorf("seeding registrations %d-%d: %w", lo, hi, err)
		}
	}
	for _, q := range []string{`VACUUM ANALYZE registrations`, `CHECKPOINT`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return checkSeed(ctx, db, from)
}

// checkSeed makes sure the database computed registration i as seedNode,
// seedDevice and Token do.
func checkSeed(ctx context.Context, db *sql.DB, i int) error {
	var node, token string
	err := db.QueryRowContext(ctx, `SELECT node, token FROM registrations WHERE device = $1`, seedDevice(i)).Scan(&node, &token)
	if err != nil {
		return fmt.Errorf("checking seeded registration %d: %w", i, err)
	}
	if node != seedNode(i) || token != benchfake.Token(i) {
		return fmt.Errorf("seeded registration %d has node %q token %q; the generator expects %q and %q",
			i, node, token, seedNode(i), benchfake.Token(i))
	}
	return nil
}

// pgAdmin creates and drops the benchmark's databases on one PostgreSQL
// server. Every database it creates is named p2bench_<pid>_<label>, so that
// ones left behind by a killed run can be recognised and dropped.
type pgAdmin struct {
	base *url.URL // the admin URL; its path names the database to connect to
	db   *sql.DB
}

func newPGAdmin(ctx context.Context, adminURL string) (*pgAdmin, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	db, err := sql.Open("postgres", adminURL)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: %w", u.Redacted(), err)
	}
	a := &pgAdmin{base: u, db: db}
	a.reapStale(ctx)
	return a, nil
}

var benchDBName = regexp.MustCompile(`^p2bench_([0-9]+)_[a-z0-9_]+$`)

// reapStale drops databases of earlier runs whose process is gone.
func (a *pgAdmin) reapStale(ctx context.Context) {
	rows, err := a.db.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'p2bench\_%'`)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) != nil {
			continue
		}
		m := benchDBName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		a.db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	}
}

// create makes a fresh empty database and returns its URL.
func (a *pgAdmin) create(ctx context.Context, label string) (name, dsn string, err error) {
	name = fmt.Sprintf("p2bench_%d_%s", os.Getpid(), label)
	if !benchDBName.MatchString(name) {
		return "", "", fmt.Errorf("bad database label %q", label)
	}
	if _, err := a.db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", "", err
	}
	if _, err := a.db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", "", err
	}
	u := *a.base
	u.Path = "/" + name
	return name, u.String(), nil
}

// drop removes a database made by create.
func (a *pgAdmin) drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		fmt.Fprintf(os.Stderr, "p2bench: dropping database %s: %v\n", name, err)
	}
}

// version returns the server's version string, such as "15.20".
func (a *pgAdmin) version(ctx context.Context) string {
	var v string
	if err := a.db.QueryRowContext(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "?"
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

func (a *pgAdmin) close() { a.db.Close() }
