// Package migrations holds the database schema of p2http as golang-migrate
// migrations, one folder per database: postgres/ and sqlite/. Both folders
// carry the same versions with the same meaning; db.Open applies them.
package migrations

import (
	"embed"
	"io/fs"
	"strconv"
	"strings"
)

// FS holds the migration files: postgres/NNNNNN_name.{up,down}.sql and
// sqlite/NNNNNN_name.{up,down}.sql, in golang-migrate's naming. Use
// fs.Sub(FS, "postgres") or fs.Sub(FS, "sqlite") as an iofs source.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS

// Latest is the version of the newest migration: the schema version of a
// database that Open brought up to date.
func Latest() uint {
	entries, err := fs.ReadDir(FS, "postgres")
	if err != nil {
		panic(err) // embedded at build time
	}
	var v uint
	for _, e := range entries {
		digits, _, _ := strings.Cut(e.Name(), "_")
		n, err := strconv.ParseUint(digits, 10, 32)
		if err != nil {
			panic("migrations: " + e.Name() + " does not start with a version")
		}
		v = max(v, uint(n))
	}
	return v
}
