package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/p2http/p2http/db"
)

// CopyOptions are the settings of a copy into another database (`p2http
// copy`).
type CopyOptions struct {
	// To is the target database: postgres://… or sqlite:PATH.
	To string
	// Batch is the number of registrations per transaction.
	Batch int
	// KeyFile, when set, is the key file beside the source SQLite database,
	// whose key the target must be served with.
	KeyFile string
}

// Flags declares copy's flags into fs.
func (o *CopyOptions) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.To, "to", "", "the target database: postgres://… (a password may come from $PGPASSWORD or ~/.pgpass) or sqlite:PATH")
	fs.IntVar(&o.Batch, "batch", 500, fmt.Sprintf("registrations per transaction (at most %d)", db.MaxCopyBatch))
}

// Validate checks the options before anything is opened.
func (o *CopyOptions) Validate() error {
	if o.To == "" {
		return errors.New("copy: --to is required")
	}
	if o.Batch < 1 || o.Batch > db.MaxCopyBatch {
		return fmt.Errorf("copy: --batch must be between 1 and %d", db.MaxCopyBatch)
	}
	return nil
}

// Copy copies every registration and meta row of src into the database
// o.To, logs its progress every 2 seconds, and writes the report to w. It
// refuses a target first used with another server key.
func Copy(ctx context.Context, src *db.DB, o CopyOptions, log *slog.Logger, w io.Writer) error {
	dst, err := db.Open(ctx, o.To)
	if err != nil {
		return fmt.Errorf("copy: --to: %s", db.Reason(err))
	}
	defer dst.Close()

	last := time.Now()
	rep, err := src.CopyTo(ctx, dst, o.Batch, func(r db.CopyReport) {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			log.Info("copying", "registrations", r.Registrations, "written", r.Written)
		}
	})
	if errors.Is(err, db.ErrFingerprintMismatch) {
		return errors.New("copy: the target database was first used with another server key (P2_SECRET_KEY); " +
			"copying would make every push to it fail with a wrong secret. Copy into an empty database, or one used with this key")
	}
	if err != nil {
		return fmt.Errorf("copy stopped after %d registrations (run it again to go on): %w", rep.Registrations, err)
	}
	fmt.Fprintf(w, "copied %d registrations from %s to %s: %d written, %d already up to date, %d node conflicts; %d new meta rows\n",
		rep.Registrations, src.Driver(), dst.Driver(), rep.Written, rep.Unchanged, rep.NodeConflicts, rep.Meta)
	if rep.NodeConflicts > 0 {
		fmt.Fprintln(w, "node conflicts: the target holds those nodes for other registrations; the source's were not copied")
	}
	if o.KeyFile != "" {
		fmt.Fprintf(w, "serve the target with P2_SECRET_KEY set to the key in %s\n", o.KeyFile)
	}
	return nil
}
