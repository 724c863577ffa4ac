// Command p2http is the push app server's HTTP service: it stores
// registrations and delivers wake-ups through FCM and APNs. See the README
// for the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/internal/memlimit"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/relay"
	"github.com/p2http/p2http/sealed"
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
		fmt.Fprintln(os.Stderr, "p2http:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends. When ready is not nil
// it receives the listener's address once the service accepts requests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := parseConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	log := logger(cfg, logOut)

	// The stored mode keeps registrations in a database; the stateless mode
	// seals each into its node and opens no database and no file at all.
	var (
		store    p2http.Store
		resolver p2http.Resolver // nil: look nodes up in store
		database api.Database    // nil: none to check for readiness
		counter  metrics.Counter // nil: no registrations gauge
		keys     *keyring.Keyring
		driver   = "none (stateless)"
	)
	if cfg.Mode == modeStateless {
		var sealedStore *sealed.Store
		keys, sealedStore, err = openSealed(cfg)
		if err != nil {
			return err
		}
		store, resolver = sealedStore, sealedStore
	} else {
		dbStore, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer dbStore.Close()
		if keys, err = loadKeyring(ctx, cfg, dbStore, log); err != nil {
			return err
		}
		store, database, counter, driver = dbStore, dbStore, dbStore, dbStore.Driver()
	}
	senders, err := apps.Build(ctx, cfg.Default, cfg.envName, cfg.Apps, cfg.Dev, log)
	if err != nil {
		return err
	}
	states := senders.Configured
	if cfg.Dev {
		log.Warn("DEV MODE: pushes for unconfigured services are logged, not sent. Never run this in production.")
	}

	mx := metrics.New(counter)
	// P2_METRICS moves /metrics to a listener of its own.
	var metricsHandler http.Handler = mx.Handler()
	if cfg.Metrics != "" {
		stopMetrics, err := metrics.Listen(cfg.Metrics, metricsHandler, log)
		if err != nil {
			return &configError{Var: "P2_METRICS", Msg: err.Error()}
		}
		defer stopMetrics()
		metricsHandler = nil
	}
	rl := relay.New(relay.Config{
		JID: cfg.JID, Store: store, Resolver: resolver, Keyring: keys, Senders: senders.Default, Apps: senders.Apps, Logger: log,
		PushDeadline: cfg.PushDeadline, CoalesceWindow: cfg.CoalesceWindow, MaxInFlight: cfg.MaxInFlight,
		PushLogEvery: time.Second, Observer: mx,
		PushLimit: ratelimit.New(cfg.LimitPushDomain), RegisterLimit: ratelimit.New(cfg.LimitRegister),
		FailLimit: ratelimit.NewMaxKeys(cfg.LimitPushFailed, ratelimit.MaxFailKeys),
	})
	srv := httpserver.New(httpserver.Config{
		Handler: api.New(api.Config{
			Relay: rl, Store: store, Database: database, Tokens: cfg.APITokens, TokenLimit: ratelimit.New(cfg.LimitAPIToken),
			ServiceStates: senders.ServiceStates(rl.AppDegraded), AppStates: senders.AppStates(rl.AppDegraded),
			Version: buildVersion(), DevMode: cfg.Dev, OpenAPI: p2http.OpenAPI, Logger: log,
			Metrics: metricsHandler, ObserveRequest: mx.Request, AllowedHosts: cfg.hostCheck(),
		}),
		Logger: log, Observer: mx, MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerAddr,
	})
	mx.OpenConns(srv.OpenConns)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &configError{Var: "P2_LISTEN", Msg: err.Error()}
	}
	log.Info("p2http listening", "addr", ln.Addr().String(), "mode", cfg.Mode, "database", driver, "jid", cfg.JID,
		"fcm", states[p2http.FCM], "apns", states[p2http.APNs], "apps", len(senders.Apps), "version", buildVersion())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(ln, cfg.TLSCert, cfg.TLSKey)
	}()
	select {
	case err := <-errc:
		if cfg.TLSCert != "" {
			return &configError{Var: "P2_TLS_CERT", Msg: err.Error()}
		}
		return err
	case <-ctx.Done():
	}
	// Stop taking requests, let the pushes in flight finish within their
	// deadline, send what coalescing still owes, then close the database.
	log.Info("shutting down: finishing pushes in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.PushDeadline+cfg.CoalesceWindow+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := rl.Close(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: owed pushes not sent: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openStore opens and migrates the configured database; a failure names
// P2_DATABASE_URL.
func openStore(ctx context.Context, cfg *config) (*db.DB, error) {
	store, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, &configError{Var: "P2_DATABASE_URL", Msg: err.Error()}
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

// loadKeyring takes the server key from P2_SECRET_KEY or, for SQLite, from a
// key file beside the database, and refuses a key other than the one the
// database was first used with (keyring.Load).
func loadKeyring(ctx context.Context, cfg *config, store *db.DB, log *slog.Logger) (*keyring.Keyring, error) {
	keyFile := ""
	if cfg.SecretKey == "" {
		path, ok := db.SQLitePath(cfg.DatabaseURL)
		if !ok {
			return nil, &configError{Var: "P2_SECRET_KEY", Msg: "is required unless the database is a SQLite file"}
		}
		keyFile = path + ".key"
	}
	keys, created, err := keyring.Load(ctx, cfg.SecretKey, keyFile, store)
	var ke *keyring.KeyError
	if errors.As(err, &ke) {
		return nil, &configError{Var: "P2_SECRET_KEY", Msg: ke.Msg}
	}
	if err != nil {
		return nil, err
	}
	if created != "" {
		log.Warn("generated a new server key; back it up with the database", "file", created)
	}
	return keys, nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
