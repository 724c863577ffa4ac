// Command p2http is the push app server's HTTP service: it stores
// registrations and delivers wake-ups through FCM and APNs. See the README
// for the configuration.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/admin"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/internal/memlimit"
	"github.com/p2http/p2http/internal/sdnotify"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/sealed"
	"github.com/p2http/p2http/stack"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	if pct, ok := memlimit.Apply(os.Getenv); ok {
		go memlimit.Yield(pct)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		logconfig.WriteExitError(os.Stderr, "p2http", logFormat(os.Args[1:], os.Getenv), err)
		os.Exit(1)
	}
}

// run is `p2http [serve]`: it parses args and the environment getenv
// reads, starts the service and serves until ctx ends, then shuts down.
// Logs go to logOut. When ready is not nil it receives the listener's
// address once the service accepts requests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	m := NewMain(getenv, logOut)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	m.notify.Ready("serving on " + m.Addr())
	if ready != nil {
		ready <- m.Addr()
	}
	select {
	case <-ctx.Done():
	case <-m.Done():
	}
	m.notify.Stopping()
	return m.Close()
}

// retentionEvery is how often serve purges under P2_RETENTION.
var retentionEvery = 24 * time.Hour

// Main is the p2http service, as cmd/wtfd's Main in WTF Dial: ParseFlags
// reads the configuration once, Run opens and wires everything and starts
// serving, Close shuts down and releases what Run opened.
type Main struct {
	// Config is the configuration ParseFlags reads.
	Config *config
	// Getenv reads the environment; Stderr receives the logs and -h.
	Getenv func(string) string
	Stderr io.Writer

	log         *slog.Logger
	store       *db.DB // nil in the stateless mode
	stack       *stack.Stack
	server      *httpserver.Server
	ln          net.Listener
	served      chan struct{} // closed when the server has stopped
	serveErr    error         // why, then
	stopMetrics func()
	stopPurging func()

	notify *sdnotify.Notifier // systemd's Type=notify
}

// NewMain returns a Main that reads the environment through getenv and
// logs to stderr.
func NewMain(getenv func(string) string, stderr io.Writer) *Main {
	return &Main{Getenv: getenv, Stderr: stderr}
}

// ParseFlags reads the configuration from the environment, then from the
// flags in args. -h returns the usage as an *envflag.Help (which is
// flag.ErrHelp), for the caller to print on standard output; a flag
// mistake writes it to m.Stderr.
func (m *Main) ParseFlags(args []string) error {
	var usage bytes.Buffer
	cfg, err := parseConfig(args, m.Getenv, &usage)
	if err != nil {
		return envflag.RouteUsage(err, &usage, m.Stderr)
	}
	m.Config = cfg
	return nil
}

// Run opens the store, builds the senders, the stack (stack.New: the
// relay and the API) and the HTTP server, and starts serving, and with
// P2_RETENTION the daily purge, the first once the service is up; it
// returns once the listener accepts. After an error, Close releases what
// Run opened.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	log := logger(cfg, m.Stderr)
	m.log = log
	m.notify = sdnotify.New(log)

	// The stored mode keeps registrations in a database; the stateless mode
	// seals each into its node and opens no database and no file at all.
	var (
		store    p2http.Store
		resolver p2http.Resolver // nil: look nodes up in store
		database api.Database    // nil: none to check for readiness
		counter  metrics.Counter // nil: no registrations gauge
		keys     *keyring.Keyring
		driver   = "none (stateless)"
		where    slog.Attr // the database the start-up line names: none here
		err      error
	)
	if cfg.Mode == modeStateless {
		var sealedStore *sealed.Store
		if keys, sealedStore, err = openSealed(cfg); err != nil {
			return err
		}
		store, resolver = sealedStore, sealedStore
	} else {
		// Migrations may outlast systemd's start timeout: ask for more.
		migrating := db.OnMigrate(func() func() { return m.notify.Extending("applying database migrations") })
		if m.store, err = openStore(ctx, cfg, migrating); err != nil {
			return err
		}
		if keys, err = admin.LoadKeyring(ctx, cfg.SecretKey, cfg.DatabaseURL, m.store, log); err != nil {
			return err
		}
		store, database, counter, driver = m.store, m.store, m.store, m.store.Driver()
		where = db.Locate(cfg.DatabaseURL).Attr() // never a user or a password
	}
	senders, err := apps.Build(ctx, cfg.Default, cfg.envName, cfg.Apps, cfg.Dev, log)
	if err != nil {
		return err
	}
	if cfg.Dev {
		log.Warn("DEV MODE: pushes for unconfigured services are logged, not sent. Never run this in production.")
	}

	mx := metrics.New(metrics.Config{Version: buildinfo.Version(version), Apps: senders.Names(), States: apps.States, Registrations: counter})
	// P2_METRICS moves /metrics to a listener of its own.
	var metricsHandler http.Handler = mx.Handler()
	if cfg.Metrics != "" {
		if m.stopMetrics, err = metrics.Listen(cfg.Metrics, metricsHandler, log); err != nil {
			return &configError{Var: "P2_METRICS", Msg: err.Error()}
		}
		metricsHandler = nil
	}
	m.stack = stack.New(stack.Config{
		JID: cfg.JID, Store: store, Resolver: resolver, Database: database, Keyring: keys, Senders: senders,
		PushDeadline: cfg.PushDeadline, CoalesceWindow: cfg.CoalesceWindow, MaxInFlight: cfg.MaxInFlight, PushLogEvery: time.Second,
		LimitPushDomain: cfg.LimitPushDomain, LimitPushFailed: cfg.LimitPushFailed,
		LimitRegister: cfg.LimitRegister, LimitAPIToken: cfg.LimitAPIToken,
		Tokens: cfg.APITokens, AllowedHosts: cfg.hostCheck(), Version: buildinfo.Version(version), DevMode: cfg.Dev,
		Metrics: metricsHandler, Observer: mx, Logger: log,
	})
	m.server = httpserver.New(httpserver.Config{
		Handler: m.stack.Handler,
		Logger:  log, Observer: mx, MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerAddr,
	})
	mx.OpenConns(m.server.OpenConns)
	mx.InFlight(m.stack.Relay.InFlight)
	mx.Readiness(m.stack)
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return &configError{Var: "P2_LISTEN", Msg: err.Error()}
	}
	states := senders.Configured
	log.Info("p2http listening", "addr", m.Addr(), "mode", cfg.Mode, "database", driver, where,
		"jid", cfg.JID, "fcm", states[p2http.FCM], "apns", states[p2http.APNs], "apps", len(senders.Apps),
		"version", buildinfo.Version(version))

	m.served = make(chan struct{})
	go func() {
		defer close(m.served)
		m.serveErr = m.server.Serve(m.ln, cfg.TLSCert, cfg.TLSKey)
	}()
	if cfg.Retention > 0 {
		// A connection pool of its own (admin.Retention): the serving
		// store's is the relay's.
		r := &admin.Retention{DatabaseURL: cfg.DatabaseURL, Keep: cfg.Retention, Every: retentionEvery, Logger: log}
		m.stopPurging = r.Start(ctx)
	}
	return nil
}

// Addr is the address the service listens on, once Run has returned.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Done is closed when the server stops by itself (a TLS certificate it
// cannot load, say); Close then says why.
func (m *Main) Done() <-chan struct{} { return m.served }

// Close stops taking requests, lets the pushes in flight finish within
// their deadline, sends what coalescing still owes, then stops the purge,
// the metrics listener and closes the database. After a failed Run it only
// releases what is open; after the server stopped by itself it returns
// why.
func (m *Main) Close() error {
	err := m.shutdown()
	if m.stopPurging != nil {
		m.stopPurging()
	}
	if m.stopMetrics != nil {
		m.stopMetrics()
	}
	if m.store != nil {
		m.store.Close()
	}
	return err
}

// shutdown is Close's part for a server that serves.
func (m *Main) shutdown() error {
	if m.served == nil {
		return nil
	}
	cfg := m.Config
	select {
	case <-m.served: // stopped by itself: nothing in flight
		if cfg.TLSCert != "" {
			return &configError{Var: "P2_TLS_CERT", Msg: m.serveErr.Error()}
		}
		return m.serveErr
	default:
	}
	m.log.Info("shutting down: finishing pushes in flight")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.PushDeadline+cfg.CoalesceWindow+5*time.Second)
	defer cancel()
	if err := m.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-m.served
	if !errors.Is(m.serveErr, http.ErrServerClosed) {
		return m.serveErr
	}
	if err := m.stack.Close(ctx); err != nil {
		return fmt.Errorf("shutdown: owed pushes not sent: %w", err)
	}
	m.log.Info("stopped")
	return nil
}

// openStore opens and migrates the configured database; a failure names
// the setting the URL came from (P2_DATABASE_URL or its flag).
func openStore(ctx context.Context, cfg *config, opts ...db.Option) (*db.DB, error) {
	store, err := db.Open(ctx, cfg.DatabaseURL, opts...)
	if err != nil {
		return nil, &configError{Var: cfg.databaseFrom, Msg: db.Reason(err)}
	}
	return store, nil
}

// openSealed builds the stateless mode's store (sealed.Open): P2_SECRET_KEY
// seals new nodes, each of P2_PREVIOUS_SECRET_KEYS still opens its own.
func openSealed(cfg *config) (*keyring.Keyring, *sealed.Store, error) {
	keys, st, err := sealed.Open(cfg.SecretKey, cfg.PreviousKeys)
	var ke *sealed.KeyError
	switch {
	case errors.As(err, &ke) && ke.Key == 0:
		return nil, nil, &configError{Var: "P2_SECRET_KEY", Msg: ke.Err.Error()}
	case errors.As(err, &ke):
		return nil, nil, &configError{Var: "P2_PREVIOUS_SECRET_KEYS", Msg: fmt.Sprintf("key %d: %v", ke.Key, ke.Err)}
	}
	return keys, st, err
}
