package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/migrations"
	"github.com/p2http/p2http/sealed"
)

// checkStore checks where registrations are kept: the database, its
// migrations and the server key, or in the stateless mode the keys that
// seal nodes; then it looks up --node. It returns the registration of
// --node, nil when none was asked for or none was found.
func (d *doctor) checkStore(ctx context.Context) *p2http.Registration {
	if d.cfg.Mode == "stateless" {
		return d.checkSealed(ctx)
	}
	store, missing := d.checkDatabase(ctx)
	if store == nil {
		if !missing {
			if d.o.Node != "" {
				d.fail("registration", "", "the node was not looked up: the database cannot be read", "fix the database first (see the database line)")
			}
			return nil
		}
		d.checkServerKey(ctx, nil, false)
		if d.o.Node != "" {
			d.fail("registration", "", "no registration holds this node: the database does not exist yet",
				"P2_DATABASE_URL must name the database the service uses")
		}
		return nil
	}
	defer store.Close()
	migrated := d.checkMigrations(ctx, store)
	d.checkServerKey(ctx, store, migrated)
	if d.o.Node == "" {
		return nil
	}
	if !migrated {
		d.fail("registration", "", "no registration holds this node: the database holds no p2http schema",
			"P2_DATABASE_URL must name the database the service uses")
		return nil
	}
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	if v, _, err := store.MigrationVersion(cctx); err == nil && v < migrations.Latest() {
		// This p2http reads columns an older schema lacks (000003's push
		// history, for one).
		d.warn("registration", "", fmt.Sprintf("the node was not looked up: the schema (version %d) is older than this p2http reads", v),
			"run `p2http migrate` (or let the service migrate at its next start), then run doctor again")
		return nil
	}
	reg, err := store.Lookup(cctx, d.o.Node)
	return d.foundNode(reg, err, "P2_DATABASE_URL must name the database the service uses; "+
		"if it does, the registration was removed (its token was reported dead, or purged) or never made: the phone must register again")
}

// describeURL names a database without its user, password or parameters.
func describeURL(rawURL string) string {
	if path, ok := db.SQLitePath(rawURL); ok {
		return "the SQLite file " + path
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "the PostgreSQL database of P2_DATABASE_URL"
	}
	return "PostgreSQL at " + u.Host + u.Path
}

// checkDatabase opens the database without changing it (db.Inspect). It
// returns the database, or nil and whether that is because the SQLite file
// does not exist yet.
func (d *doctor) checkDatabase(ctx context.Context) (store *db.DB, missing bool) {
	rawURL := d.cfg.DatabaseURL
	where := describeURL(rawURL)
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	store, err := db.Inspect(cctx, rawURL)
	path, sqlite := db.SQLitePath(rawURL)
	switch {
	case p2http.ErrorCode(err) == p2http.ENOTFOUND && sqlite:
		dir := filepath.Dir(path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			d.fail("database", "", where+" does not exist, nor its directory "+dir+": the service cannot create it",
				"create "+dir+", writable by the user p2http runs as, or correct P2_DATABASE_URL")
			return nil, false
		}
		d.warn("database", "", where+" does not exist yet: the service creates it on its first start",
			"nothing, on a new installation; otherwise P2_DATABASE_URL names the wrong file, and the registrations are in another")
		return nil, true
	case err != nil && sqlite:
		d.fail("database", "", "cannot open "+where+": "+explain(err),
			"the user p2http runs as must read and write the file and its directory")
		return nil, false
	case p2http.ErrorCode(err) == p2http.EINVALID:
		d.fail("database", "", "P2_DATABASE_URL is not a valid database URL: "+explain(err),
			"write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…, with the password's special characters "+
				"percent-encoded (%40 for @, %3A for :, %2F for /, %25 for %)")
		return nil, false
	case err != nil:
		d.fail("database", "", "cannot reach "+where+": "+explain(err),
			"check that PostgreSQL runs and accepts connections from this host, and P2_DATABASE_URL's host, port, user, password "+
				"and database (psql \"$P2_DATABASE_URL\" -c 'select 1' tries the same)")
		return nil, false
	}
	if st, err := os.Stat(path); sqlite && err == nil && st.Mode().Perm()&0o077 != 0 {
		d.warn("database", "", fmt.Sprintf("%s answers, but other users may read it (mode %04o): it holds push tokens", where, st.Mode().Perm()),
			"chmod 600 "+path)
		return store, false
	}
	d.ok("database", "", where+" answers")
	return store, false
}

// checkMigrations compares the database's schema version with this
// p2http's, and reports whether any migration was ever applied.
func (d *doctor) checkMigrations(ctx context.Context, store *db.DB) (migrated bool) {
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	latest := migrations.Latest()
	migrated, err := store.Migrated(cctx)
	if err != nil {
		d.fail("migrations", "", "cannot read the schema version: "+explain(err),
			"the database user must be able to read the schema (see the database line)")
		return false
	}
	if !migrated {
		d.warn("migrations", "", fmt.Sprintf("the database holds no p2http schema yet: the service creates it (migrations 1 to %d) on its first start", latest),
			"nothing, on a new database; otherwise P2_DATABASE_URL names the wrong database (or, on PostgreSQL, the wrong search_path)")
		return false
	}
	v, dirty, err := store.MigrationVersion(cctx)
	switch {
	case err != nil:
		d.fail("migrations", "", "cannot read the schema version: "+explain(err),
			"the database user must be able to read the schema (see the database line)")
	case dirty:
		d.fail("migrations", "", fmt.Sprintf("migration %d failed halfway and left the schema dirty: the service refuses to start", v),
			fmt.Sprintf("repair the schema by hand to what migrations/ says for version %d, then set the version with golang-migrate's "+
				"`migrate force %d`; or restore the backup taken before the upgrade", v, v))
	case v > latest:
		d.fail("migrations", "", fmt.Sprintf("schema version %d is newer than this p2http knows (%d): a newer p2http migrated it, and this one refuses to start", v, latest),
			"run the newer p2http, or restore the backup taken before it migrated")
	case v < latest:
		d.warn("migrations", "", fmt.Sprintf("schema version %d, this p2http's is %d: the service applies the rest on its next start", v, latest),
			"back the database up, then run `p2http migrate` (or let the service migrate)")
	default:
		d.ok("migrations", "", fmt.Sprintf("schema version %d, the newest this p2http knows", v))
	}
	return true
}

// checkServerKey checks the server key the service would use — P2_SECRET_KEY,
// or the key file beside a SQLite database — against the fingerprint the
// database pinned (keyring.Load's rule), writing nothing. store is nil when
// the database does not exist yet.
func (d *doctor) checkServerKey(ctx context.Context, store *db.DB, migrated bool) {
	cfg := d.cfg
	keyFile, err := admin.KeyFile(cfg.SecretKey, cfg.DatabaseURL)
	if err != nil {
		d.fail("server-key", "", err.Error(), "set P2_SECRET_KEY (head -c 32 /dev/urandom | base64), the same on every instance")
		return
	}
	pinned := ""
	if store != nil && migrated {
		cctx, cancel := d.bounded(ctx)
		defer cancel()
		if pinned, err = store.PinnedFingerprint(cctx); err != nil {
			d.fail("server-key", "", "cannot read the key fingerprint the database pinned: "+explain(err), "see the database line")
			return
		}
	}
	source, key := "P2_SECRET_KEY", cfg.SecretKey
	if key == "" {
		source = "the key file " + keyFile
		key, err = keyring.ReadKeyFile(keyFile)
		switch {
		case errors.Is(err, fs.ErrNotExist) && pinned != "":
			d.fail("server-key", "", "P2_SECRET_KEY is not set and "+source+" is missing, but the database was first used with a key: "+
				"the service refuses to start",
				"restore the key file from the backup the database came from, or set P2_SECRET_KEY to that key; a new key would change every secret")
			return
		case errors.Is(err, fs.ErrNotExist):
			d.warn("server-key", "", "P2_SECRET_KEY is not set and "+source+" does not exist yet: the service generates it on its first start",
				"back the key file up with the database once it exists: without it the registrations cannot be used")
			return
		case err != nil:
			d.fail("server-key", "", "cannot read "+source+": "+err.Error(),
				"the key file must hold the server key (at least 32 characters) and be readable by the user p2http runs as")
			return
		}
		if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			d.warn("server-key", "", fmt.Sprintf("%s may be read by other users (mode %04o)", source, st.Mode().Perm()), "chmod 600 "+keyFile)
			return
		}
	}
	kr, err := keyring.New(key)
	switch {
	case err != nil:
		d.fail("server-key", "", "the key in "+source+" cannot be used: "+err.Error(),
			"use a key of at least 32 characters (head -c 32 /dev/urandom | base64)")
	case pinned == "":
		d.ok("server-key", "", source+" holds a usable key; the database pins none yet: the service pins this one on its first start")
	case pinned != kr.Fingerprint():
		d.fail("server-key", "", "the key in "+source+" differs from the key this database was first used with: the service refuses "+
			"to start (with another key every push would fail with a wrong secret, and XMPP servers would drop the registrations)",
			"set P2_SECRET_KEY, or restore the key file, to the key the database was first used with, from the backup of that installation")
	default:
		d.ok("server-key", "", source+" is the key this database was first used with")
	}
}

// checkSealed checks the stateless mode's keys, and opens --node.
func (d *doctor) checkSealed(ctx context.Context) *p2http.Registration {
	d.ok("database", "", "none: the stateless mode keeps no database; each node carries its registration, sealed")
	_, st, err := sealed.Open(d.cfg.SecretKey, d.cfg.PreviousKeys)
	if err != nil {
		d.fail("server-key", "", "the stateless mode's keys cannot be used: "+err.Error(),
			"P2_SECRET_KEY and each of P2_PREVIOUS_SECRET_KEYS must be at least 32 characters")
		return nil
	}
	msg := "P2_SECRET_KEY seals new nodes"
	if n := len(d.cfg.PreviousKeys); n > 0 {
		msg += fmt.Sprintf("; %d previous key%s still open the nodes they sealed", n, plural(n))
	}
	d.ok("server-key", "", msg)
	if d.o.Node == "" {
		return nil
	}
	reg, err := st.Lookup(ctx, d.o.Node)
	return d.foundNode(reg, err, "the node was sealed with a key the service no longer has: after a key rotation, "+
		"list the former key in P2_PREVIOUS_SECRET_KEYS; otherwise the phone must register again")
}

// foundNode reports the look-up of --node, then what became of its
// pushes; notFound says what to do when no registration holds it.
func (d *doctor) foundNode(reg p2http.Registration, err error, notFound string) *p2http.Registration {
	switch {
	case p2http.ErrorCode(err) == p2http.ENOTFOUND:
		d.fail("registration", "", "no registration holds this node: the service answers pushes to it 404 (item-not-found), "+
			"and the XMPP server drops it", "check that the node was copied whole; "+notFound)
		return nil
	case err != nil:
		d.fail("registration", "", "could not look the node up: "+explain(err), "see the database line")
		return nil
	}
	msg := fmt.Sprintf("an %s registration of the domain %s", serviceName(reg.Service), reg.Domain)
	if !reg.CreatedAt.IsZero() {
		msg += ", registered " + d.when(reg.CreatedAt)
		// Phones register again at every start of their app: the token
		// may have changed then.
		if reg.UpdatedAt.Sub(reg.CreatedAt) >= time.Second {
			msg += ", last registered again " + d.when(reg.UpdatedAt)
		}
	}
	d.ok("registration", string(reg.App.OrDefault()), strings.TrimSpace(msg))
	d.checkPushHistory(reg)
	return &reg
}
