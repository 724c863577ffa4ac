package main

// The subcommands of p2http: serving (the default) and the admin commands
// that work on its database (admin/). Each reads the same environment as
// serve, through parseConfig, and refuses an environment serve would
// refuse.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/doctor"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
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
		{"stats", "[--json] [--top N | --node NODE]", "count registrations by service, secret kind, app and domain, or show one registration and what became of its pushes", (*cli).stats},
		{"purge", "--not-seen-for DURATION [--dry-run]", "delete registrations not seen (re-registered or pushed) for DURATION, such as 90d", (*cli).purge},
		{"doctor", "[--token TOKEN [--app NAME] | --node NODE] [--json] [--timeout D]", "check the configuration end to end: database, server key, FCM and APNs credentials, exposure", (*cli).doctor},
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
// error, and its text goes to stdout, as help's does.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatchReady(ctx, args, getenv, stdout, stderr, nil)
}

// dispatchReady is dispatch whose serve reports its listening address on
// ready, as run does.
func dispatchReady(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr, ready: ready}
	name, rest := commandOf(args)
	if isHelp(args) {
		c.usage(stdout)
		fmt.Fprintln(stdout, "\nFlags of serve:")
	}
	for _, cmd := range commands {
		if cmd.name == name {
			err := cmd.run(c, ctx, rest)
			var help *envflag.Help
			if errors.As(err, &help) {
				io.WriteString(stdout, help.Usage)
			}
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q; `p2http help` lists the commands", name)
}

// commandOf returns the command args name and its arguments: serve when
// args is empty or starts with a flag, version for -version.
func commandOf(args []string) (name string, rest []string) {
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "--version" || a == "-version":
			return "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			return a, args[1:]
		}
	}
	return "serve", args
}

// isHelp reports whether args is p2http -h, which lists the commands and
// serve's flags.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}

// logFormat is the log format that args and the environment name, read as
// the command reads them (serve's -log-format, else P2_LOG_FORMAT) but
// leniently: the configuration may be what failed.
func logFormat(args []string, getenv func(string) string) string {
	name, rest := commandOf(args)
	if name != "serve" {
		rest = nil // the admin commands read the environment only
	}
	c := &config{}
	settings(c).Parse(rest, getenv, io.Discard) // its errors are the command's to report
	return c.LogFormat
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
	fmt.Fprintf(c.stdout, "p2http %s (%s, %s/%s)\n", buildinfo.Version(version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// adminConfig is parseConfig for a command with --database-url: when
// given, it is the database URL, and the errors about it name it as the
// commands spell it, --database-url.
func adminConfig(dbURL string, getenv func(string) string, w io.Writer) (*config, error) {
	cfg, err := parseConfig(dbFlag(dbURL), getenv, w)
	if dbURL != "" {
		var ce *configError
		if errors.As(err, &ce) && ce.Var == "-database-url" {
			ce.Var = "--database-url"
		}
		if cfg != nil {
			cfg.databaseFrom = "--database-url"
		}
	}
	return cfg, err
}

// dbFlag is serve's flag for --database-url, when given.
func dbFlag(dbURL string) []string {
	if dbURL == "" {
		return nil
	}
	return []string{"-database-url", dbURL}
}

// config reads the environment as serve does, with the database URL of
// --database-url when given, which the errors then name (adminConfig).
func (c *cli) config(dbURL string) (*config, error) {
	cfg, err := adminConfig(dbURL, c.getenv, c.stderr)
	if err == nil && cfg.Mode == modeStateless {
		return nil, &configError{Var: "P2_MODE", Msg: "the stateless mode keeps no database: this command has nothing to work on"}
	}
	return cfg, err
}

// logger is the text or JSON logger of cfg, on w, at cfg's level.
func logger(cfg *config, w io.Writer) *slog.Logger {
	return logconfig.New(w, cfg.LogFormat, cfg.LogLevel)
}

// prepare parses the command line of the command name into o
// (admin.ParseFlags) and returns --database-url; -h returns the usage as
// an *envflag.Help.
func (c *cli) prepare(name string, args []string, o admin.Options) (dbURL string, err error) {
	for _, cmd := range commands {
		if cmd.name == name {
			var usage bytes.Buffer
			dbURL, err = admin.ParseFlags(name, cmd.args, cmd.summary, args, o, &usage)
			if err != nil {
				return "", envflag.RouteUsage(err, &usage, c.stderr)
			}
			return dbURL, nil
		}
	}
	panic("no command " + name)
}

// onStore runs the command name: prepare, read the configuration (config),
// then open (and migrate) its database and run do on it.
func (c *cli) onStore(ctx context.Context, name string, args []string, o admin.Options, do func(*config, *db.DB) error) error {
	dbURL, err := c.prepare(name, args, o)
	if err != nil {
		return err
	}
	cfg, err := c.config(dbURL)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return do(cfg, store)
}

func (c *cli) migrate(ctx context.Context, args []string) error {
	return c.onStore(ctx, "migrate", args, &admin.MigrateOptions{}, func(_ *config, store *db.DB) error {
		return admin.Migrate(ctx, store, c.stdout)
	})
}

// importP2 is `p2http import-p2`.
func (c *cli) importP2(ctx context.Context, args []string) error {
	o := admin.ImportOptions{Stdin: os.Stdin, MySQLPassword: c.getenv("MYSQL_PWD")}
	return c.onStore(ctx, "import-p2", args, &o, func(cfg *config, store *db.DB) error {
		log := logger(cfg, c.stderr)
		// The key serve would use, pinned by the database's fingerprint.
		keys, err := admin.LoadKeyring(ctx, cfg.SecretKey, cfg.DatabaseURL, store, log)
		if err != nil {
			return err
		}
		return admin.ImportP2(ctx, store, keys, o, log, c.stdout)
	})
}

// copyDB is `p2http copy`.
func (c *cli) copyDB(ctx context.Context, args []string) error {
	var o admin.CopyOptions
	dbURL, err := c.prepare("copy", args, &o)
	if err != nil {
		return err
	}
	cfg, err := c.config(dbURL)
	if err != nil {
		return err
	}
	if o.To == cfg.DatabaseURL {
		return errors.New("copy: --to names the database copied from")
	}
	o.KeyFile, _ = admin.KeyFile(cfg.SecretKey, cfg.DatabaseURL) // "" but beside a SQLite file
	src, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer src.Close()
	return admin.Copy(ctx, src, o, logger(cfg, c.stderr), c.stdout)
}

// stats is `p2http stats`.
func (c *cli) stats(ctx context.Context, args []string) error {
	var o admin.StatsOptions
	return c.onStore(ctx, "stats", args, &o, func(_ *config, store *db.DB) error { return admin.Stats(ctx, store, o, c.stdout) })
}

// purge is `p2http purge`.
func (c *cli) purge(ctx context.Context, args []string) error {
	var o admin.PurgeOptions
	return c.onStore(ctx, "purge", args, &o, func(_ *config, store *db.DB) error { return admin.Purge(ctx, store, o, c.stdout) })
}

// doctor is `p2http doctor`: doctor.Run on the configuration serve would
// run with, valid or not.
func (c *cli) doctor(ctx context.Context, args []string) error {
	var o doctor.Options
	dbURL, err := c.prepare("doctor", args, &o)
	if err != nil {
		return err
	}
	cfg, err := adminConfig(dbURL, c.getenv, io.Discard)
	d := doctor.Config{Err: err}
	if cfg != nil {
		d = doctor.Config{Err: err, Parsed: true, Mode: cfg.Mode, DatabaseURL: cfg.DatabaseURL, SecretKey: cfg.SecretKey,
			PreviousKeys: cfg.PreviousKeys, Default: cfg.Default, DefaultName: cfg.envName, Apps: cfg.Apps, Dev: cfg.Dev,
			Listen: cfg.Listen, APITokens: len(cfg.APITokens), AllowedHosts: cfg.hostCheck(),
			TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, Metrics: cfg.Metrics}
	}
	return doctor.Run(ctx, d, o, c.stdout)
}

// serve is `p2http [serve]`: run.
func (c *cli) serve(ctx context.Context, args []string) error {
	return run(ctx, args, c.getenv, c.stderr, c.ready)
}
