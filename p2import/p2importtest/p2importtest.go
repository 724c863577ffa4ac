// Package p2importtest gives tests p2's database: a fresh MariaDB database
// holding p2's exact target table, dropped at cleanup.
//
// MariaDB is found through the environment variable P2_TEST_MYSQL_URL
// (default mysql://root@127.0.0.1:3306/). A MariaDB that cannot be reached
// fails the test: it is never skipped.
package p2importtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/p2http/p2http/p2import"
)

// EnvMySQLURL names the environment variable holding the URL of the MariaDB
// tests use; its path, if any, is ignored.
const EnvMySQLURL = "P2_TEST_MYSQL_URL"

// DefaultMySQLURL is used when EnvMySQLURL is unset or empty.
const DefaultMySQLURL = "mysql://root@127.0.0.1:3306/"

// MySQLURL returns the server's URL: $P2_TEST_MYSQL_URL or DefaultMySQLURL.
func MySQLURL() string {
	if u := os.Getenv(EnvMySQLURL); u != "" {
		return u
	}
	return DefaultMySQLURL
}

// P2 creates a fresh database with p2's target table (p2import.Schema) and
// returns its mysql:// URL and a pool on it, closed at cleanup, after which
// the database is dropped.
func P2(t testing.TB) (rawURL string, db *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(MySQLURL())
	if err != nil {
		t.Fatalf("p2importtest: $%s is not a URL", EnvMySQLURL)
	}
	u.Path = "/"
	admin, err := p2import.OpenMySQLDB(ctx, u.String())
	if err != nil {
		t.Fatalf("p2importtest: MariaDB is unreachable (set $%s to a reachable server; default %s): %v",
			EnvMySQLURL, DefaultMySQLURL, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "p2test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("p2importtest: create database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name); err != nil {
			t.Errorf("p2importtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	rawURL = u.String()
	db, err = p2import.OpenMySQLDB(ctx, rawURL)
	if err != nil {
		t.Fatalf("p2importtest: open %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, p2import.Schema); err != nil {
		t.Fatalf("p2importtest: create p2's table: %v", err)
	}
	return rawURL, db
}

// Insert writes rows into p2's table as p2 does; an empty Service, Domain,
// Token, Node or Secret is written as NULL.
func Insert(t testing.TB, db *sql.DB, rows ...p2import.Row) {
	t.Helper()
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	for _, r := range rows {
		_, err := db.Exec(`INSERT INTO target (service, device, channel, domain, token, node, secret) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			null(r.Service), r.Device, r.Channel, null(r.Domain), null(r.Token), null(r.Node), null(r.Secret))
		if err != nil {
			t.Fatalf("p2importtest: insert into target: %v", err)
		}
	}
}
