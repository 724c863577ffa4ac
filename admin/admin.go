// Package admin holds the work of p2http's administration commands on its
// database — migrate, import-p2, copy, stats, purge — and the retention
// that runs purge on a schedule while p2http serves. cmd/p2http parses the
// commands' flags into the options here and opens the databases; this
// package does the work and writes the reports.
package admin

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/p2http/p2http/db"
)

// Options are the settings of a command: its flags, and the check run
// before anything is opened.
type Options interface {
	// Flags declares the command's flags into fs.
	Flags(fs *flag.FlagSet)
	// Validate checks the settings once the flags are parsed.
	Validate() error
}

// ParseFlags parses the command line args of the command name into o: its
// flags and --database-url, which overrides P2_DATABASE_URL as serve's
// flag does; then it checks o. -h and flag errors write the command's
// usage, which shows synopsis and summary, to w. It returns --database-url.
func ParseFlags(name, synopsis, summary string, args []string, o Options, w io.Writer) (dbURL string, err error) {
	fs := flag.NewFlagSet("p2http "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: p2http %s %s\n\n%s.\n\nFlags:\n", name, synopsis, strings.ToUpper(summary[:1])+summary[1:])
		fs.PrintDefaults()
	}
	fs.StringVar(&dbURL, "database-url", "", "the database to work on, instead of P2_DATABASE_URL")
	o.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		// The argument is not repeated: a token given without --token
		// would be printed.
		return "", fmt.Errorf("%s: unexpected argument %d: this command takes flags only (a token goes after --token)",
			fs.Name(), len(args)-fs.NArg()+1)
	}
	return dbURL, o.Validate()
}

// MigrateOptions are the settings of `p2http migrate`: none of its own.
type MigrateOptions struct{}

// Flags declares no flag.
func (*MigrateOptions) Flags(*flag.FlagSet) {}

// Validate accepts everything.
func (*MigrateOptions) Validate() error { return nil }

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
