// Package admin holds the work of p2http's administration commands on its
// database — migrate, import-p2, copy, stats, purge — and the retention
// that runs purge on a schedule while p2http serves. cmd/p2http parses the
// commands' flags into the options here and opens the databases; this
// package does the work and writes the reports.
package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/p2http/p2http/db"
)

// Migrate reports the schema version of store, which db.Open migrated.
func Migrate(ctx context.Context, store *db.DB, w io.Writer) error {
	v, _, err := store.MigrationVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s database migrated: schema version %d\n", store.Driver(), v)
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
