// Package migrations holds the database schema of p2http as golang-migrate
// migrations, one folder per database: postgres/ and sqlite/. Both folders
// carry the same versions with the same meaning; db.Open applies them.
package migrations

import (
	"embed"

	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// FS holds the migration files: postgres/NNNNNN_name.{up,down}.sql and
// sqlite/NNNNNN_name.{up,down}.sql, in golang-migrate's naming. Use
// fs.Sub(FS, "postgres") or fs.Sub(FS, "sqlite") as an iofs source.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS

// Latest is the version of the newest migration: the schema version of a
// database that Open brought up to date. The files are read as
// golang-migrate reads them (both folders carry the same versions).
func Latest() uint {
	src, err := iofs.New(FS, "postgres")
	if err != nil {
		panic("migrations: " + err.Error()) // embedded at build time: a bad file name fails every test
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		panic("migrations: " + err.Error())
	}
	for {
		next, err := src.Next(v)
		if err != nil { // fs.ErrNotExist after the last one
			return v
		}
		v = next
	}
}
