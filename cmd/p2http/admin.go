package main

// The subcommands of p2http: serving (the default) and the admin commands
// that work on its database (admin/). Each reads the same environment as
// serve, through parseConfig, and refuses an environment serve would
// refuse.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/doctor"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/command"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
)

// program is p2http's command line: serve by default, the admin commands,
// version and help, each running with c.
func (c *cli) program() *command.Program {
	return &command.Program{
		Name: "p2http", Version: buildinfo.Version(version), Stdout: c.stdout,
		Default: command.Command{Name: "serve", Args: "[flags]", Run: c.serve,
			Summary: "run the HTTP service (the default when no command is given; p2http serve -h lists its flags)"},
		Commands: []command.Command{
			{Name: "migrate", Args: "[--database-url URL]", Run: c.migrate, Summary: "apply the database migrations and exit"},
			{Name: "import-p2", Args: "--from mysql://USER:PASS@HOST:PORT/DB | --from-tsv FILE [--app NAME] [--dry-run] [--json]", Run: c.importP2,
				Summary: "import p2's registrations, keeping their nodes and secrets"},
			{Name: "copy", Args: "--to URL [--batch N]", Run: c.copyDB,
				Summary: "copy every registration and meta row into another database (SQLite to PostgreSQL)"},
			{Name: "stats", Args: "[--json] [--top N | --node NODE]", Run: c.stats,
				Summary: "count registrations by service, secret kind, app and domain, or show one registration and what became of its pushes"},
			{Name: "purge", Args: "--not-seen-for DURATION [--dry-run]", Run: c.purge,
				Summary: "delete registrations not seen (re-registered or pushed) for DURATION, such as 90d"},
			{Name: "doctor", Args: "[--token TOKEN [--app NAME] | --node NODE] [--json] [--timeout D]", Run: c.doctor,
				Summary: "check the configuration end to end: database, server key, FCM and APNs credentials, exposure"},
		},
		Footer: []string{
			"Every command reads the environment of serve (P2_DATABASE_URL, P2_SECRET_KEY…; see the README).",
			"`p2http COMMAND -h` shows a command's flags; docs/operations.md describes them.",
		},
	}
}

// cli is what a subcommand runs with.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	ready          chan<- string // for serve; nil outside tests
}

// dispatch runs the subcommand args name — serve when args is empty or
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
	return c.program().Dispatch(ctx, args)
}

// logFormat is the log format that args and the environment name, read as
// the command reads them (serve's -log-format, else P2_LOG_FORMAT) but
// leniently: the configuration may be what failed.
func logFormat(args []string, getenv func(string) string) string {
	name, rest := command.Split(args)
	if name != "" && name != "serve" {
		rest = nil // the admin commands read the environment only
	}
	c := &config{}
	settings(c).Parse(rest, getenv, io.Discard) // its errors are the command's to report
	return c.LogFormat
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
	cmd, ok := c.program().Lookup(name)
	if !ok {
		panic("no command " + name)
	}
	var usage bytes.Buffer
	dbURL, err = admin.ParseFlags(name, cmd.Args, cmd.Summary, args, o, &usage)
	if err != nil {
		return "", envflag.RouteUsage(err, &usage, c.stderr)
	}
	return dbURL, nil
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
