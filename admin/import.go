package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/p2import"
)

// ImportOptions are the settings of an import of p2's registrations
// (`p2http import-p2`).
type ImportOptions struct {
	// From is p2's MariaDB, mysql://USER:PASSWORD@HOST:PORT/DATABASE;
	// FromTSV a tab-separated dump of p2's target table, "-" for Stdin.
	// Exactly one is set.
	From, FromTSV string
	// Stdin is read for FromTSV "-".
	Stdin io.Reader
	// MySQLPassword ($MYSQL_PWD) is the password for a From without one.
	MySQLPassword string
	// App is the app the registrations belong to.
	App string
	// DryRun checks and counts everything and writes no registration.
	DryRun bool
	// Batch is the number of registrations written per transaction.
	Batch int
	// JSON prints the report as JSON.
	JSON bool
}

// Flags declares import-p2's flags into fs.
func (o *ImportOptions) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.From, "from", "", "p2's MariaDB: mysql://USER:PASSWORD@HOST:PORT/DATABASE (the password may come from $MYSQL_PWD instead)")
	fs.StringVar(&o.FromTSV, "from-tsv", "", "a tab-separated dump of p2's target table (mysql -B -N; see docs/operations.md); - reads standard input")
	fs.StringVar(&o.App, "app", string(p2http.DefaultApp), "the app the registrations belong to")
	fs.BoolVar(&o.DryRun, "dry-run", false, "check and count everything, write no registration")
	fs.IntVar(&o.Batch, "batch", 500, "registrations written per transaction")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
}

// Validate checks the options before anything is opened.
func (o *ImportOptions) Validate() error {
	if (o.From == "") == (o.FromTSV == "") {
		return errors.New("import-p2: give either --from mysql://… or --from-tsv FILE")
	}
	if o.Batch < 1 || o.Batch > db.MaxCopyBatch {
		return fmt.Errorf("import-p2: --batch must be between 1 and %d", db.MaxCopyBatch)
	}
	if strings.TrimSpace(o.App) == "" {
		return errors.New("import-p2: --app is empty")
	}
	return nil
}

// ImportP2 imports p2's registrations into store, keeping their nodes and
// secrets (kept secrets are sealed with keys), logs its progress every 2
// seconds, and writes the report to w.
func ImportP2(ctx context.Context, store *db.DB, keys *keyring.Keyring, o ImportOptions, log *slog.Logger, w io.Writer) error {
	var src p2import.Source
	what := "p2's target table"
	if o.From != "" {
		u, err := mysqlURL(o.From, o.MySQLPassword)
		if err != nil {
			return err
		}
		m, err := p2import.OpenMySQL(ctx, u)
		if err != nil {
			return fmt.Errorf("import-p2: --from: %s", strings.TrimPrefix(err.Error(), "p2import: "))
		}
		src = m
	} else {
		what = "the dump"
		if o.FromTSV == "-" {
			src = p2import.NewTSV(io.NopCloser(o.Stdin))
		} else {
			f, err := os.Open(o.FromTSV)
			if err != nil {
				return fmt.Errorf("import-p2: --from-tsv: %w", err)
			}
			src = p2import.NewTSV(f)
		}
	}
	defer src.Close()

	last := time.Now()
	rep, err := p2import.Import(ctx, src, store, keys, p2import.Options{
		App: p2http.App(o.App), DryRun: o.DryRun, Batch: o.Batch,
		Progress: func(r p2import.Report) {
			if time.Since(last) >= 2*time.Second {
				last = time.Now()
				log.Info("importing", "read", r.Read, "imported", r.Imported, "skipped", r.Skipped(), "invalid", r.Invalid)
			}
		},
	})
	if err != nil {
		printImport(w, rep, what, o.JSON)
		return fmt.Errorf("import-p2 stopped after %d rows (run it again to go on; what is imported stays): %w", rep.Read, err)
	}
	return printImport(w, rep, what, o.JSON)
}

// mysqlURL takes the password from pwd ($MYSQL_PWD, as the mysql client
// does) when the URL has none.
func mysqlURL(raw, pwd string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("import-p2: --from must look like mysql://user:password@host:port/database")
	}
	if u.User == nil || pwd == "" {
		return raw, nil
	}
	if _, set := u.User.Password(); set {
		return raw, nil
	}
	u.User = url.UserPassword(u.User.Username(), pwd)
	return u.String(), nil
}

func printImport(w io.Writer, rep p2import.Report, what string, asJSON bool) error {
	if asJSON {
		return writeJSON(w, rep)
	}
	verb := "imported"
	if rep.DryRun {
		verb = "to import (dry run)"
		fmt.Fprintln(w, "DRY RUN: no registration was written.")
	}
	fmt.Fprintf(w, "read %d rows of %s\n", rep.Read, what)
	line := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-20s %8d  %s\n", label, n, note)
	}
	line(verb, rep.Imported, "")
	line("already imported", rep.AlreadyImported, "skipped: an earlier import")
	line("token updated", rep.TokenUpdated, "imported earlier, p2 has a newer token and the phone has not registered here since")
	line("registered since", rep.RegisteredSince, "skipped: the phone registered with p2http since; its newer registration was kept")
	line("node taken", rep.NodeTaken, "skipped: another registration here holds the node")
	line("invalid", rep.Invalid, "not imported")
	for _, reason := range rep.Reasons() {
		fmt.Fprintf(w, "  %29d  %s\n", rep.InvalidReasons[reason], reason)
	}
	if len(rep.InvalidRows) > 0 {
		fmt.Fprintln(w, "  invalid rows:")
		for _, r := range rep.InvalidRows {
			fmt.Fprintf(w, "    %s\n", r)
		}
		if rep.Invalid > int64(len(rep.InvalidRows)) {
			fmt.Fprintf(w, "    … and %d more\n", rep.Invalid-int64(len(rep.InvalidRows)))
		}
	}
	return nil
}
