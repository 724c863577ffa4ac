package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/p2http/p2http/db"
)

// MinInactivity is the shortest --not-seen-for and P2_RETENTION accepted: a
// phone merely offline for a few hours must keep its registration.
const MinInactivity = 24 * time.Hour

// ParseAge parses a duration such as 90d, 1d12h or 720h: Go's durations
// with a leading whole number of days.
func ParseAge(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		days, err := strconv.Atoi(s[:i])
		if err == nil {
			if days < 0 || days > 100_000 {
				return 0, fmt.Errorf("%q: too many days", s)
			}
			d, rest = time.Duration(days)*24*time.Hour, s[i+1:]
		}
	}
	if rest != "" || d == 0 {
		more, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 90d, 36h or 1d12h", s)
		}
		d += more
	}
	return d, nil
}

// FormatAge writes d in days when it is whole days.
func FormatAge(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ParseRetention reads a retention (P2_RETENTION): an age such as 180d, at
// least MinInactivity; empty, 0 or off turn it off (0).
func ParseRetention(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "off":
		return 0, nil
	}
	d, err := ParseAge(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if d < MinInactivity {
		return 0, fmt.Errorf("must be at least %s (or off)", FormatAge(MinInactivity))
	}
	return d, nil
}

// PurgeOptions are the settings of `p2http purge`.
type PurgeOptions struct {
	// NotSeenFor is --not-seen-for, such as 90d: registrations neither
	// re-registered nor pushed for this long go.
	NotSeenFor string
	// DryRun only counts them.
	DryRun bool

	age time.Duration // NotSeenFor, parsed by Validate
}

// Flags declares purge's flags into fs.
func (o *PurgeOptions) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.NotSeenFor, "not-seen-for", "", "delete registrations neither re-registered nor pushed for this long: 90d, 2160h… (at least 1d)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "only count them")
}

// Validate checks the options before anything is opened.
func (o *PurgeOptions) Validate() error {
	if o.NotSeenFor == "" {
		return errors.New("purge: --not-seen-for is required, such as --not-seen-for 90d")
	}
	d, err := ParseAge(o.NotSeenFor)
	if err != nil {
		return fmt.Errorf("purge: --not-seen-for: %w", err)
	}
	if d < MinInactivity {
		return fmt.Errorf("purge: --not-seen-for must be at least %s", FormatAge(MinInactivity))
	}
	o.age = d
	return nil
}

// Purge deletes the registrations of store not seen for o.NotSeenFor (or
// counts them, for a dry run) and writes how many to w. o must have passed
// Validate.
func Purge(ctx context.Context, store *db.DB, o PurgeOptions, w io.Writer) error {
	d := o.age
	before := time.Now().Add(-d)
	if o.DryRun {
		n, err := store.CountInactive(ctx, before)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "would delete %d registrations not seen for %s (since %s); dry run, nothing deleted\n",
			n, FormatAge(d), before.UTC().Format(time.RFC3339))
		return nil
	}
	n, err := store.Purge(ctx, before)
	if err != nil {
		return fmt.Errorf("purge stopped after deleting %d registrations: %w", n, err)
	}
	fmt.Fprintf(w, "deleted %d registrations not seen for %s (since %s)\n", n, FormatAge(d), before.UTC().Format(time.RFC3339))
	return nil
}

// Retention purges, while p2http serves, the registrations not seen for
// Keep (P2_RETENTION): the purge command's work, once the service is up and
// then every Every. Each round opens a connection pool of its own and
// closes it: on PostgreSQL every instance's cache hears of each deleted
// node at once; on SQLite a serving cache may hold a just purged
// registration for its 30 s time to live.
type Retention struct {
	// DatabaseURL is the database purged.
	DatabaseURL string
	// Keep is how long a registration may go unseen; at least
	// MinInactivity.
	Keep time.Duration
	// Every is the time between two rounds.
	Every time.Duration
	// Logger receives a line per round.
	Logger *slog.Logger
}

// Start runs Run in a goroutine of its own until ctx ends or stop is
// called; stop returns once Run has.
func (r *Retention) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run purges now and then every r.Every until ctx ends. A round that fails
// is logged and tried again at the next.
func (r *Retention) Run(ctx context.Context) {
	for {
		r.purgeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Every):
		}
	}
}

func (r *Retention) purgeOnce(ctx context.Context) {
	log := r.Logger
	store, err := db.Open(ctx, r.DatabaseURL)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("retention: cannot open the database; trying again later", "err", err)
		}
		return
	}
	defer store.Close()
	n, err := store.Purge(ctx, time.Now().Add(-r.Keep))
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		log.Error("retention: purge failed; trying again later", "deleted", n, "err", err)
	default:
		log.Info("retention: purged registrations not seen for "+FormatAge(r.Keep), "deleted", n)
	}
}
