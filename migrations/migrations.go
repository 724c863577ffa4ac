// Package migrations holds the database schema of p2http as golang-migrate
// migrations, one folder per database: postgres/ and sqlite/. Both folders
// carry the same versions with the same meaning; db.Open applies them.
package migrations

import "embed"

// FS holds the migration files: postgres/NNNNNN_name.{up,down}.sql and
// sqlite/NNNNNN_name.{up,down}.sql, in golang-migrate's naming. Use
// fs.Sub(FS, "postgres") or fs.Sub(FS, "sqlite") as an iofs source.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
