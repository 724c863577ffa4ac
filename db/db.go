// Package db keeps registrations in SQLite (modernc.org/sqlite, pure Go) or
// PostgreSQL (lib/pq) through sqlx, and applies the embedded migrations when
// it opens a database. *DB implements p2http.Store and p2http.Keeper.
//
// Timestamps are TIMESTAMPTZ in PostgreSQL and INTEGER unix microseconds in
// SQLite; either way they come back as time.Time in UTC, truncated to the
// microsecond.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepg "github.com/golang-migrate/migrate/v4/database/postgres"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"    // also registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/migrations"
)

// The driver names Driver reports (and the database/sql driver names used).
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

func init() {
	// sqlx knows "sqlite3" but not modernc's "sqlite".
	sqlx.BindDriver(DriverSQLite, sqlx.QUESTION)
}

// The SQLite connection settings: wait up to 5 s for a lock, write-ahead
// logging so readers do not block the writer, foreign keys on, and BEGIN
// IMMEDIATE so a transaction takes the write lock up front instead of failing
// with "database is locked" when it upgrades.
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// sqliteMemoryParams are sqliteParams without WAL, which an in-memory
// database does not have.
const sqliteMemoryParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"

// acceptedForms is what an unsupported database URL error names.
const acceptedForms = "want sqlite:PATH, sqlite::memory: or postgres://… (postgresql://…)"

// DB is a registration store on SQLite or PostgreSQL. It is safe for
// concurrent use.
type DB struct {
	x      *sqlx.DB
	driver string

	st       *stmts    // prepared statements, set by Open on PostgreSQL
	notifier *notifier // of cache invalidations, set by Open on PostgreSQL

	cache *regCache
	// bg is the context of background work (cache refreshes), cancelled by
	// Close; refreshers holds a slot per refresh running.
	bg         context.Context
	stopBG     context.CancelFunc
	refreshers chan struct{}

	listener  *pq.Listener // PostgreSQL only
	listening sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
}

// target is a parsed database URL.
type target struct {
	driver string // DriverSQLite or DriverPostgres
	dsn    string // what sql.Open gets
	memory bool   // sqlite::memory:
	path   string // the SQLite file, for sqlite:PATH
}

// SQLitePath returns the file path of a sqlite:PATH URL (sqlite:///abs/path
// and sqlite://rel/path are accepted too). ok is false for a PostgreSQL URL,
// for sqlite::memory: and for anything that is not a sqlite: URL.
func SQLitePath(rawURL string) (path string, ok bool) {
	rest, isSQLite := strings.CutPrefix(rawURL, "sqlite:")
	if !isSQLite {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" || rest == ":memory:" {
		return "", false
	}
	return rest, true
}

// parseURL turns rawURL into a driver and DSN. Its errors never repeat the
// URL, which may hold a password.
func parseURL(rawURL string) (target, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		if rest := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//"); rest == ":memory:" {
			return target{driver: DriverSQLite, dsn: "file::memory:?" + sqliteMemoryParams, memory: true}, nil
		}
		path, ok := SQLitePath(rawURL)
		if !ok {
			return target{}, p2http.Errorf(p2http.EINVALID, "database URL sqlite: names no file; %s", acceptedForms)
		}
		return target{driver: DriverSQLite, dsn: "file:" + escapeSQLitePath(path) + "?" + sqliteParams, path: path}, nil
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		// lib/pq parses the URL itself and passes parameters it does not
		// know (search_path, application_name…) as run-time parameters.
		// Its error for a malformed URL quotes the URL, password and all:
		// the URL is checked here first, and only the cause is named.
		if _, err := url.Parse(rawURL); err != nil {
			cause := err
			var ue *url.Error
			if errors.As(err, &ue) {
				cause = ue.Err
			}
			return target{}, p2http.Errorf(p2http.EINVALID, "the PostgreSQL database URL is not a valid URL (%s); %s",
				redactURLError(cause), acceptedForms)
		}
		return target{driver: DriverPostgres, dsn: rawURL}, nil
	default:
		scheme := "no scheme"
		if i := strings.Index(rawURL, ":"); i > 0 && !strings.ContainsAny(rawURL[:i], "/@ ") {
			scheme = fmt.Sprintf("scheme %q", rawURL[:i])
		}
		return target{}, p2http.Errorf(p2http.EINVALID, "unsupported database URL (%s); %s", scheme, acceptedForms)
	}
}

// redactURLError is the text of a URL parse error without what it quotes
// of the URL: net/url's errors quote the port or escape at fault, which
// may be a piece of the password.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg = strings.TrimSpace(strings.TrimRight(msg[:i], ": "))
	}
	return msg
}

// escapeSQLitePath escapes the characters that mean something in an SQLite
// file: URI, so that any file name survives.
func escapeSQLitePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Open opens the database rawURL names and brings its schema up to date:
//
//	sqlite:PATH                     an SQLite file (created when missing)
//	sqlite::memory:                 a private in-memory SQLite database (tests)
//	postgres://user@host/db?…       PostgreSQL; the parameters are kept, so
//	postgresql://…                  sslmode=disable or search_path=… work
//
// A database it cannot reach gives an EUNAVAILABLE *p2http.Error; a URL of
// another form an EINVALID one; a migration left dirty an error that says so.
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	d, err := connect(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	done := func() {}
	if o.onMigrate != nil {
		done = o.onMigrate()
	}
	err = d.migrate(ctx, rawURL)
	done()
	if err != nil {
		d.Close()
		return nil, err
	}
	t, _ := parseURL(rawURL)
	if err := d.prepare(ctx, t.dsn); err != nil {
		d.Close()
		return nil, err
	}
	if d.driver == DriverPostgres {
		d.listen(t.dsn)
	} else {
		d.cache.reset(true)
	}
	return d, nil
}

// An Option changes what Open does.
type Option func(*options)

type options struct {
	onMigrate func() (done func())
}

// OnMigrate has Open call begin as it starts on the migrations, which may
// take long (or wait for another instance's), and the function begin
// returns once they are over, applied or failed. p2http meanwhile asks
// systemd for more time to start.
func OnMigrate(begin func() (done func())) Option {
	return func(o *options) { o.onMigrate = begin }
}

// connect opens the pool and checks that the database answers, without
// migrating.
func connect(ctx context.Context, rawURL string) (*DB, error) {
	d, err := openPool(rawURL)
	if err != nil {
		return nil, err
	}
	if err := d.Ping(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// openPool sets up the connection pool for rawURL; it connects to nothing
// yet.
func openPool(rawURL string) (*DB, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if t.path != "" {
		if err := createPrivate(t.path); err != nil {
			// As when SQLite cannot open it: a missing directory or
			// permission is the machine's state, not a wrong URL.
			return nil, unavailable("create the SQLite file", err)
		}
	}
	var sqlDB *sql.DB
	if t.driver == DriverPostgres {
		// Connections that obey contexts; see pgconn.go.
		sqlDB, err = openPostgres(t.dsn, nil)
	} else {
		sqlDB, err = sql.Open(t.driver, t.dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", t.driver, err)
	}
	switch {
	case t.memory:
		// Every connection to :memory: is a database of its own: keep one,
		// forever.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	case t.driver == DriverSQLite:
		// WAL lets readers run beside the one writer; writers queue on the
		// busy timeout.
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	default:
		// As many idle connections as open ones: with fewer, every
		// moment of load above the idle bound closed connections as they
		// were returned and dialled new ones (a PostgreSQL backend
		// started, statements prepared again) for the next requests.
		// Idle ones still go after ConnMaxIdleTime.
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	bg, stop := context.WithCancel(context.Background())
	return &DB{x: sqlx.NewDb(sqlDB, t.driver), driver: t.driver, cache: newRegCache(false),
		bg: bg, stopBG: stop, refreshers: make(chan struct{}, cacheRefreshers), closing: make(chan struct{})}, nil
}

// createPrivate creates the SQLite file at path, empty and readable by the
// owner only, unless it exists (an existing file keeps its mode). SQLite
// creates the -wal and -shm files with the mode of the database file, so
// they come out 0600 too, whatever the umask; left to SQLite, all three
// would be 0644 under the usual umask of 022, and registrations hold push
// tokens. (modernc.org/sqlite has no mode option, and a temporary umask
// would change the mode of files other goroutines create meanwhile: the
// umask belongs to the process.) An empty file is an empty database to
// SQLite.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// migrate applies the embedded migrations of d's database. SQLite migrates
// through d's own pool (an in-memory database exists only on that
// connection); PostgreSQL through a pool of its own, because golang-migrate
// keeps a connection for its advisory lock and closes the pool it was given.
func (d *DB) migrate(ctx context.Context, rawURL string) (err error) {
	dir, err := fs.Sub(migrations.FS, d.driver)
	if err != nil {
		return fmt.Errorf("db: migrations for %s: %w", d.driver, err)
	}
	src, err := iofs.New(dir, ".")
	if err != nil {
		return fmt.Errorf("db: migrations for %s: %w", d.driver, err)
	}

	var (
		drv     database.Driver
		closeFn func() error
	)
	switch d.driver {
	case DriverSQLite:
		drv, err = migratesqlite.WithInstance(d.x.DB, &migratesqlite.Config{})
		if err != nil {
			src.Close()
			return d.migrateErr("prepare", err)
		}
		// Not m.Close: that would close d's pool.
		closeFn = src.Close
	default:
		own, err := openPostgres(rawURL, nil)
		if err != nil {
			src.Close()
			return fmt.Errorf("db: open postgres for migrations: %w", err)
		}
		own.SetMaxOpenConns(2)
		if err := own.PingContext(ctx); err != nil {
			src.Close()
			own.Close()
			return d.migrateErr("connect", err)
		}
		drv, err = migratepg.WithInstance(own, &migratepg.Config{})
		if err != nil {
			src.Close()
			own.Close()
			return d.migrateErr("prepare", err)
		}
	}

	m, err := migrate.NewWithInstance("iofs", src, d.driver, drv)
	if err != nil {
		src.Close()
		if closeFn == nil {
			drv.Close()
		}
		return d.migrateErr("prepare", err)
	}
	if closeFn == nil {
		closeFn = func() error {
			srcErr, dbErr := m.Close()
			return errors.Join(srcErr, dbErr)
		}
	}
	defer func() {
		if cerr := closeFn(); cerr != nil && err == nil {
			err = fmt.Errorf("db: close migrations: %w", cerr)
		}
	}()

	// Stop between migrations when ctx ends.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			select {
			case m.GracefulStop <- true:
			default:
			}
		case <-done:
		}
	}()

	err = m.Up()
	var dirty migrate.ErrDirty
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		if cerr := ctx.Err(); cerr != nil {
			return d.fail("migrate", cerr)
		}
		return nil
	case errors.As(err, &dirty):
		return fmt.Errorf("db: the %s schema is dirty at migration %d: an earlier migration failed halfway; repair the schema by hand, then set the version with `migrate force`", d.driver, dirty.Version)
	default:
		return d.migrateErr("apply", err)
	}
}

// migrateErr classifies a migration failure: unreachable is EUNAVAILABLE,
// anything else is a plain error naming the step.
func (d *DB) migrateErr(step string, err error) error {
	if isUnavailable(err) {
		return unavailable("migrate "+step, err)
	}
	return fmt.Errorf("db: %s migrations (%s): %w", step, d.driver, err)
}

// call bounds one call of the store: on PostgreSQL by PostgresCallTimeout
// (see pgconn.go); SQLite's lock waits are bounded by its busy timeout.
func (d *DB) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.driver != DriverPostgres {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, PostgresCallTimeout)
}

// Driver returns "sqlite" or "postgres".
func (d *DB) Driver() string { return d.driver }

// Close closes the pool. Calls made afterwards fail with EUNAVAILABLE.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		close(d.closing)
		if d.listener != nil {
			d.listener.Close()
		}
		d.listening.Wait()
		d.stopBG()
		d.stopRefreshes()
		d.cache.reset(false)
		if d.notifier != nil {
			d.notifier.close()
		}
	})
	return d.x.Close()
}

// Ping checks that the database answers; EUNAVAILABLE when it does not.
func (d *DB) Ping(ctx context.Context) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	if err := d.x.PingContext(ctx); err != nil {
		return d.fail("ping", err)
	}
	return nil
}

const sqlMigrationVersion = `SELECT version, dirty FROM schema_migrations LIMIT 1`

// MigrationVersion returns the schema version golang-migrate recorded and
// whether that migration was left dirty (failed halfway). Version 0 means no
// migration has been applied.
func (d *DB) MigrationVersion(ctx context.Context) (version uint, dirty bool, err error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	var v int64
	err = d.x.QueryRowxContext(ctx, sqlMigrationVersion).Scan(&v, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, d.fail("migration version", err)
	case v < 0:
		return 0, dirty, nil
	}
	return uint(v), dirty, nil
}

const (
	sqlEnsureMeta = `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
	sqlGetMeta    = `SELECT value FROM meta WHERE key = ?`
)

// EnsureMeta stores value under key unless the key already holds a value,
// and returns the value stored afterwards: value itself the first time, the
// earlier value after that. The caller compares (to pin the server key's
// fingerprint, say).
func (d *DB) EnsureMeta(ctx context.Context, key, value string) (stored string, err error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	if _, err := d.x.ExecContext(ctx, d.x.Rebind(sqlEnsureMeta), key, value); err != nil {
		return "", d.fail("ensure meta", err)
	}
	if err := d.x.GetContext(ctx, &stored, d.x.Rebind(sqlGetMeta), key); err != nil {
		return "", d.fail("ensure meta", err)
	}
	return stored, nil
}

const sqlCountRegistrations = `SELECT service, COUNT(*) FROM registrations GROUP BY service`

// CountRegistrations returns the number of registrations per service. Every
// known service is present in the map, with 0 when it has none.
func (d *DB) CountRegistrations(ctx context.Context) (map[p2http.Service]int64, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	rows, err := d.x.QueryContext(ctx, sqlCountRegistrations)
	if err != nil {
		return nil, d.fail("count registrations", err)
	}
	defer rows.Close()
	counts := make(map[p2http.Service]int64, len(p2http.Services))
	for _, s := range p2http.Services {
		counts[s] = 0
	}
	for rows.Next() {
		var (
			s string
			n int64
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, d.fail("count registrations", err)
		}
		counts[p2http.Service(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, d.fail("count registrations", err)
	}
	return counts, nil
}
