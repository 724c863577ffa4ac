package main

// The subcommands of p2http: serving (the default) and the admin commands
// that work on its database. Each reads the same environment as serve,
// through loadConfig, and refuses an environment serve would refuse.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/p2import"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	run     func(c *cli, ctx context.Context, args []string) error
}

// commands lists the subcommands in the order help shows them.
var commands []command

func init() {
	commands = []command{
		{"serve", "[flags]", "run the HTTP service (the default when no command is given; p2http serve -h lists its flags)", (*cli).serve},
		{"migrate", "[--database-url URL]", "apply the database migrations and exit", (*cli).migrate},
		{"import-p2", "--from mysql://USER:PASS@HOST:PORT/DB | --from-tsv FILE [--app NAME] [--dry-run] [--json]", "import p2's registrations, keeping their nodes and secrets", (*cli).importP2},
		{"copy", "--to URL [--batch N]", "copy every registration and meta row into another database (SQLite to PostgreSQL)", (*cli).copyDB},
		{"stats", "[--json] [--top N]", "count registrations by service, secret kind, app and domain", (*cli).stats},
		{"purge", "--not-seen-for DURATION [--dry-run]", "delete registrations not seen (re-registered or pushed) for DURATION, such as 90d", (*cli).purge},
		{"version", "", "print the version", (*cli).version},
		{"help", "", "show this help", (*cli).help},
	}
}

// cli is what a subcommand runs with.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	ready          chan<- string // for serve; nil outside tests
}

// dispatch runs the subcommand args names — serve when args is empty or
// starts with a flag — with the environment getenv reads. Results go to
// stdout, logs and diagnostics to stderr. A help request (-h) is not an
// error.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatchReady(ctx, args, getenv, stdout, stderr, nil)
}

// dispatchReady is dispatch whose serve reports its listening address on
// ready, as run does.
func dispatchReady(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr, ready: ready}
	name, rest := "serve", args
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			c.usage(stderr)
			fmt.Fprintln(stderr, "\nFlags of serve:")
		case a == "--version" || a == "-version":
			name, rest = "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			name, rest = a, args[1:]
		}
	}
	for _, cmd := range commands {
		if cmd.name == name {
			err := cmd.run(c, ctx, rest)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q; `p2http help` lists the commands", name)
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: p2http [command] [flags]")
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, cmd := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEvery command reads the environment of serve (P2_DATABASE_URL, P2_SECRET_KEY…; see the README).")
	fmt.Fprintln(w, "`p2http COMMAND -h` shows a command's flags; docs/operations.md describes them.")
}

func (c *cli) help(_ context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("help takes no arguments")
	}
	c.usage(c.stdout)
	return nil
}

func (c *cli) version(_ context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintf(c.stdout, "p2http %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// flags starts the flag set of a subcommand, with --database-url, which
// overrides P2_DATABASE_URL as serve's flag does.
func (c *cli) flags(name string) (*flag.FlagSet, *string) {
	for _, cmd := range commands {
		if cmd.name == name {
			fs := flag.NewFlagSet("p2http "+name, flag.ContinueOnError)
			fs.SetOutput(c.stderr)
			fs.Usage = func() {
				fmt.Fprintf(c.stderr, "Usage: p2http %s %s\n\n%s.\n\nFlags:\n", cmd.name, cmd.args, upperFirst(cmd.summary))
				fs.PrintDefaults()
			}
			dbURL := fs.String("database-url", "", "the database to work on, instead of P2_DATABASE_URL")
			return fs, dbURL
		}
	}
	panic("no command " + name)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parse parses args into fs and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// config reads the environment as serve does, with the database URL of
// --database-url when given.
func (c *cli) config(dbURL string) (*config, error) {
	var args []string
	if dbURL != "" {
		args = []string{"-database-url", dbURL}
	}
	cfg, err := loadConfig(args, c.getenv)
	if err == nil && cfg.Mode == modeStateless {
		return nil, &configError{"P2_MODE", "the stateless mode keeps no database: this command has nothing to work on"}
	}
	return cfg, err
}

// open reads the configuration as config does and opens (and migrates)
// its database.
func (c *cli) open(ctx context.Context, dbURL string) (*config, *db.DB, error) {
	cfg, err := c.config(dbURL)
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

// logger is the text or JSON logger of cfg, on w, at cfg's level.
func logger(cfg *config, w io.Writer) *slog.Logger {
	return logconfig.New(w, cfg.LogFormat, cfg.LogLevel)
}

func (c *cli) migrate(ctx context.Context, args []string) error {
	fs, dbURL := c.flags("migrate")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, store, err := c.open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	v, _, err := store.MigrationVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s database migrated: schema version %d\n", store.Driver(), v)
	return nil
}

// importP2 is `p2http import-p2`.
func (c *cli) importP2(ctx context.Context, args []string) error {
	fs, dbURL := c.flags("import-p2")
	from := fs.String("from", "", "p2's MariaDB: mysql://USER:PASSWORD@HOST:PORT/DATABASE (the password may come from $MYSQL_PWD instead)")
	fromTSV := fs.String("from-tsv", "", "a tab-separated dump of p2's target table (mysql -B -N; see docs/operations.md); - reads standard input")
	app := fs.String("app", string(p2http.DefaultApp), "the app the registrations belong to")
	dryRun := fs.Bool("dry-run", false, "check and count everything, write no registration")
	batch := fs.Int("batch", 500, "registrations written per transaction")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*from == "") == (*fromTSV == "") {
		return errors.New("import-p2: give either --from mysql://… or --from-tsv FILE")
	}
	if *batch < 1 || *batch > db.MaxCopyBatch {
		return fmt.Errorf("import-p2: --batch must be between 1 and %d", db.MaxCopyBatch)
	}
	if strings.TrimSpace(*app) == "" {
		return errors.New("import-p2: --app is empty")
	}
	cfg, store, err := c.open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	log := logger(cfg, c.stderr)
	// The key serve would use, pinned by the database's fingerprint.
	keys, err := loadKeyring(ctx, cfg, store, log)
	if err != nil {
		return err
	}

	var src p2import.Source
	what := "p2's target table"
	if *from != "" {
		u, err := c.mysqlURL(*from)
		if err != nil {
			return err
		}
		m, err := p2import.OpenMySQL(ctx, u)
		if err != nil {
			return err
		}
		src = m
	} else {
		what = "the dump"
		if *fromTSV == "-" {
			src = p2import.NewTSV(io.NopCloser(os.Stdin))
		} else {
			f, err := os.Open(*fromTSV)
			if err != nil {
				return fmt.Errorf("import-p2: %w", err)
			}
			src = p2import.NewTSV(f)
		}
	}
	defer src.Close()

	last := time.Now()
	rep, err := p2import.Import(ctx, src, store, keys, p2import.Options{
		App: p2http.App(*app), DryRun: *dryRun, Batch: *batch,
		Progress: func(r p2import.Report) {
			if time.Since(last) >= 2*time.Second {
				last = time.Now()
				log.Info("importing", "read", r.Read, "imported", r.Imported, "skipped", r.Skipped(), "invalid", r.Invalid)
			}
		},
	})
	if err != nil {
		c.printImport(rep, what, *asJSON)
		return fmt.Errorf("import-p2 stopped after %d rows (run it again to go on; what is imported stays): %w", rep.Read, err)
	}
	return c.printImport(rep, what, *asJSON)
}

// mysqlURL takes the password from $MYSQL_PWD, as the mysql client does,
// when the URL has none.
func (c *cli) mysqlURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("import-p2: --from must look like mysql://user:password@host:port/database")
	}
	pwd := c.getenv("MYSQL_PWD")
	if u.User == nil || pwd == "" {
		return raw, nil
	}
	if _, set := u.User.Password(); set {
		return raw, nil
	}
	u.User = url.UserPassword(u.User.Username(), pwd)
	return u.String(), nil
}

func (c *cli) printImport(rep p2import.Report, what string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := c.stdout
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

// copyDB is `p2http copy`.
func (c *cli) copyDB(ctx context.Context, args []string) error {
	fs, dbURL := c.flags("copy")
	to := fs.String("to", "", "the target database: postgres://… (a password may come from $PGPASSWORD or ~/.pgpass) or sqlite:PATH")
	batch := fs.Int("batch", 500, fmt.Sprintf("registrations per transaction (at most %d)", db.MaxCopyBatch))
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("copy: --to is required")
	}
	if *batch < 1 || *batch > db.MaxCopyBatch {
		return fmt.Errorf("copy: --batch must be between 1 and %d", db.MaxCopyBatch)
	}
	cfg, err := c.config(*dbURL)
	if err != nil {
		return err
	}
	if *to == cfg.DatabaseURL {
		return errors.New("copy: --to names the database copied from")
	}
	log := logger(cfg, c.stderr)
	src, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := db.Open(ctx, *to)
	if err != nil {
		return fmt.Errorf("copy: --to: %w", err)
	}
	defer dst.Close()

	last := time.Now()
	rep, err := src.CopyTo(ctx, dst, *batch, func(r db.CopyReport) {
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
	fmt.Fprintf(c.stdout, "copied %d registrations from %s to %s: %d written, %d already up to date, %d node conflicts; %d new meta rows\n",
		rep.Registrations, src.Driver(), dst.Driver(), rep.Written, rep.Unchanged, rep.NodeConflicts, rep.Meta)
	if rep.NodeConflicts > 0 {
		fmt.Fprintln(c.stdout, "node conflicts: the target holds those nodes for other registrations; the source's were not copied")
	}
	if path, ok := db.SQLitePath(cfg.DatabaseURL); ok && cfg.SecretKey == "" {
		fmt.Fprintf(c.stdout, "serve the target with P2_SECRET_KEY set to the key in %s.key\n", path)
	}
	return nil
}

// stats is `p2http stats`.
func (c *cli) stats(ctx context.Context, args []string) error {
	fs, dbURL := c.flags("stats")
	asJSON := fs.Bool("json", false, "print JSON")
	top := fs.Int("top", 0, "list only the N largest domains (0: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *top < 0 {
		return errors.New("stats: --top must not be negative")
	}
	_, store, err := c.open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	omitted := 0
	if *top > 0 && len(st.Domains) > *top {
		omitted = len(st.Domains) - *top
		st.Domains = st.Domains[:*top]
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			db.Stats
			DomainsOmitted int `json:"domains_omitted"`
		}{st, omitted})
	}
	w := c.stdout
	fmt.Fprintf(w, "registrations %d\n", st.Total)
	section := func(title string, keys []string, n func(string) int64) {
		fmt.Fprintf(w, "\n%s\n", title)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-20s %10d\n", k, n(k))
		}
	}
	var services []string
	for _, s := range p2http.Services {
		services = append(services, string(s))
	}
	section("by service", services, func(k string) int64 { return st.ByService[p2http.Service(k)] })
	section("by secret", []string{string(p2http.SecretDerived), string(p2http.SecretKept) + " (from p2)"},
		func(k string) int64 { return st.BySecret[p2http.SecretKind(strings.Fields(k)[0])] })
	var apps []string
	for a := range st.ByApp {
		apps = append(apps, a)
	}
	slices.Sort(apps)
	section("by app", apps, func(k string) int64 { return st.ByApp[k] })

	width := len("domain")
	for _, ds := range st.Domains {
		width = max(width, len(ds.Domain))
	}
	fmt.Fprintf(w, "\n%-*s %10s", width, "domain", "total")
	for _, s := range services {
		fmt.Fprintf(w, " %10s", s)
	}
	fmt.Fprintln(w)
	for _, ds := range st.Domains {
		fmt.Fprintf(w, "%-*s %10d", width, ds.Domain, ds.Total)
		for _, s := range p2http.Services {
			fmt.Fprintf(w, " %10d", ds.ByService[s])
		}
		fmt.Fprintln(w)
	}
	if omitted > 0 {
		fmt.Fprintf(w, "… and %d more domains\n", omitted)
	}
	return nil
}

// minInactivity is the shortest --not-seen-for and P2_RETENTION accepted: a
// phone merely offline for a few hours must keep its registration.
const minInactivity = 24 * time.Hour

// parseAge parses a duration such as 90d, 1d12h or 720h: Go's durations
// with a leading whole number of days.
func parseAge(s string) (time.Duration, error) {
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

// formatAge writes d in days when it is whole days.
func formatAge(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// purge is `p2http purge`.
func (c *cli) purge(ctx context.Context, args []string) error {
	fs, dbURL := c.flags("purge")
	age := fs.String("not-seen-for", "", "delete registrations neither re-registered nor pushed for this long: 90d, 2160h… (at least 1d)")
	dryRun := fs.Bool("dry-run", false, "only count them")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *age == "" {
		return errors.New("purge: --not-seen-for is required, such as --not-seen-for 90d")
	}
	d, err := parseAge(*age)
	if err != nil {
		return fmt.Errorf("purge: --not-seen-for: %w", err)
	}
	if d < minInactivity {
		return fmt.Errorf("purge: --not-seen-for must be at least %s", formatAge(minInactivity))
	}
	_, store, err := c.open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	before := time.Now().Add(-d)
	if *dryRun {
		n, err := store.CountInactive(ctx, before)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "would delete %d registrations not seen for %s (since %s); dry run, nothing deleted\n",
			n, formatAge(d), before.UTC().Format(time.RFC3339))
		return nil
	}
	n, err := store.Purge(ctx, before)
	if err != nil {
		return fmt.Errorf("purge stopped after deleting %d registrations: %w", n, err)
	}
	fmt.Fprintf(c.stdout, "deleted %d registrations not seen for %s (since %s)\n", n, formatAge(d), before.UTC().Format(time.RFC3339))
	return nil
}

// retentionEvery is how often serve purges under P2_RETENTION.
var retentionEvery = 24 * time.Hour

// parseRetention reads P2_RETENTION: empty, 0 or off turn it off.
func parseRetention(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "off":
		return 0, nil
	}
	d, err := parseAge(strings.TrimSpace(s))
	if err != nil {
		return 0, &configError{"P2_RETENTION", err.Error()}
	}
	if d < minInactivity {
		return 0, &configError{"P2_RETENTION", fmt.Sprintf("must be at least %s (or off)", formatAge(minInactivity))}
	}
	return d, nil
}

// serve is `p2http [serve]`: run, and with P2_RETENTION the daily purge of
// registrations not seen for that long, the first once the service is up.
// The purge uses a connection pool of its own (run keeps its store to
// itself): on PostgreSQL every instance's cache hears of each deleted node
// at once; on SQLite the serving cache may hold a just purged registration
// for its 30 s time to live.
func (c *cli) serve(ctx context.Context, args []string) error {
	retention, err := parseRetention(c.getenv("P2_RETENTION"))
	if err != nil {
		return err
	}
	if retention == 0 {
		return run(ctx, args, c.getenv, c.stderr, c.ready)
	}
	cfg, err := loadConfig(args, c.getenv)
	if err != nil {
		return run(ctx, args, c.getenv, c.stderr, c.ready) // reports the error as always
	}
	if cfg.Mode == modeStateless {
		return &configError{"P2_RETENTION", "the stateless mode keeps no registrations to purge: unset it"}
	}
	log := logger(cfg, c.stderr)
	loopCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	up := make(chan string, 1)
	wg.Go(func() {
		select {
		case addr := <-up:
			if c.ready != nil {
				c.ready <- addr
			}
		case <-loopCtx.Done():
			return
		}
		retain(loopCtx, cfg.DatabaseURL, retention, log)
	})
	return run(ctx, args, c.getenv, c.stderr, up)
}

// retain purges registrations not seen for keep, now and every
// retentionEvery, until ctx ends.
func retain(ctx context.Context, dbURL string, keep time.Duration, log *slog.Logger) {
	for {
		purgeOnce(ctx, dbURL, keep, log)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retentionEvery):
		}
	}
}

func purgeOnce(ctx context.Context, dbURL string, keep time.Duration, log *slog.Logger) {
	store, err := db.Open(ctx, dbURL)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("retention: cannot open the database; trying again later", "err", err)
		}
		return
	}
	defer store.Close()
	n, err := store.Purge(ctx, time.Now().Add(-keep))
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		log.Error("retention: purge failed; trying again later", "deleted", n, "err", err)
	default:
		log.Info("retention: purged registrations not seen for "+formatAge(keep), "deleted", n)
	}
}
