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
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/httpserver"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/metrics"
	"github.com/p2http/p2http/ratelimit"
	"github.com/p2http/p2http/relay"
	"github.com/p2http/p2http/sealed"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	if pct, ok := setMemoryLimit(os.Getenv); ok {
		go yieldMemoryLimit(pct)
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
	cfg, err := loadConfig(args, getenv)
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
	senders, err := buildAllSenders(ctx, cfg, log)
	if err != nil {
		return err
	}
	states := senders.States
	if cfg.Dev {
		log.Warn("DEV MODE: pushes for unconfigured services are logged, not sent. Never run this in production.")
	}

	mx := metrics.New(counter)
	// P2_METRICS moves /metrics to a listener of its own.
	var metricsHandler http.Handler = mx.Handler()
	if cfg.Metrics != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics, metricsHandler, log)
		if err != nil {
			return &configError{"P2_METRICS", err.Error()}
		}
		defer stopMetrics()
		metricsHandler = nil
	}
	rl := relay.New(relay.Config{
		JID: cfg.JID, Store: store, Resolver: resolver, Keyring: keys, Senders: senders.Default, Apps: senders.Apps, Logger: log,
		PushDeadline: cfg.PushDeadline, CoalesceWindow: cfg.CoalesceWindow, MaxInFlight: cfg.MaxInFlight,
		PushLogEvery: time.Second, Observer: mx,
		PushLimit: ratelimit.New(cfg.LimitPushDomain), RegisterLimit: ratelimit.New(cfg.LimitRegister),
		FailLimit: ratelimit.NewMaxKeys(cfg.LimitPushFailed, maxFailKeys),
	})
	// statesOf is the configured state of app's services, with the ones that
	// currently refuse its credentials marked degraded.
	statesOf := func(app string, configured map[p2http.Service]string) map[p2http.Service]string {
		out := make(map[p2http.Service]string, len(configured))
		for s, st := range configured {
			if bad, _ := rl.AppDegraded(p2http.App(app), s); bad {
				st = "degraded"
			}
			out[s] = st
		}
		return out
	}
	serviceStates := func() map[p2http.Service]string { return statesOf(string(p2http.DefaultApp), states) }
	appStates := func() map[string]map[p2http.Service]string {
		out := make(map[string]map[p2http.Service]string, len(senders.AppStates))
		for app, st := range senders.AppStates {
			out[app] = statesOf(app, st)
		}
		return out
	}
	srv := httpserver.New(httpserver.Config{
		Handler: api.New(api.Config{
			Registrar: rl, Pusher: rl, Describer: rl, Database: database, Tokens: cfg.APITokens, TokenLimit: ratelimit.New(cfg.LimitAPIToken),
			ServiceStates: serviceStates, AppStates: appStates,
			Version: buildVersion(), DevMode: cfg.Dev, OpenAPI: p2http.OpenAPI, Logger: log,
			Metrics: metricsHandler, ObserveRequest: mx.Request, AllowedHosts: cfg.hostCheck(),
		}),
		Logger: log, Observer: mx, MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerAddr,
	})
	mx.OpenConns(srv.OpenConns)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &configError{"P2_LISTEN", err.Error()}
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
			return &configError{"P2_TLS_CERT", err.Error()}
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
		return nil, &configError{"P2_DATABASE_URL", err.Error()}
	}
	return store, nil
}

// openSealed builds the stateless mode's store: P2_SECRET_KEY seals new
// nodes, and each of P2_PREVIOUS_SECRET_KEYS still opens the nodes it
// sealed, so that the server key can be rotated without dropping every
// registration at once.
func openSealed(cfg *config) (*keyring.Keyring, *sealed.Store, error) {
	current, err := keyring.New(cfg.SecretKey)
	if err != nil {
		return nil, nil, &configError{"P2_SECRET_KEY", err.Error()}
	}
	keys := []*keyring.Keyring{current}
	for i, k := range cfg.PreviousKeys {
		kr, err := keyring.New(k)
		if err != nil {
			return nil, nil, &configError{"P2_PREVIOUS_SECRET_KEYS", fmt.Sprintf("key %d: %v", i+1, err)}
		}
		keys = append(keys, kr)
	}
	st, err := sealed.New(keys, nil)
	if err != nil {
		return nil, nil, &configError{"P2_PREVIOUS_SECRET_KEYS", err.Error()}
	}
	return current, st, nil
}

// loadKeyring takes the server key from P2_SECRET_KEY or, for SQLite, from a
// key file beside the database, and refuses a key other than the one the
// database was first used with.
//
// A refused start writes no key file. A new key is generated only for a
// database that holds no fingerprint yet: one whose key file went missing
// is refused before anything is written, since a new key can never match
// and the file would be a wrong key in every later backup. The new file is
// written before its fingerprint is pinned (a pinned key without its file
// would be lost for good), and removed again if another process pinned a
// different key in between.
func loadKeyring(ctx context.Context, cfg *config, store *db.DB, log *slog.Logger) (*keyring.Keyring, error) {
	key := cfg.SecretKey
	created := "" // the key file this call wrote
	if key == "" {
		path, ok := db.SQLitePath(cfg.DatabaseURL)
		if !ok {
			return nil, &configError{"P2_SECRET_KEY", "is required unless the database is a SQLite file"}
		}
		keyFile := path + ".key"
		var err error
		key, err = keyring.ReadKeyFile(keyFile)
		if errors.Is(err, os.ErrNotExist) {
			meta, merr := store.AllMeta(ctx)
			if merr != nil {
				return nil, merr
			}
			if meta[db.MetaKeyFingerprint] != "" {
				return nil, &configError{"P2_SECRET_KEY", "not set, and the key file " + keyFile + " is missing, but the database " +
					"was first used with a key: restore the key file from the backup the database came from, or set " +
					"P2_SECRET_KEY to that key; no new key was written"}
			}
			key = keyring.NewKey()
			if err = keyring.WriteKeyFile(keyFile, key); err == nil {
				created = keyFile
			}
		}
		if err != nil {
			return nil, &configError{"P2_SECRET_KEY", "not set, and the key file beside the database failed: " + err.Error()}
		}
	}
	keys, err := keyring.New(key)
	if err != nil {
		return nil, &configError{"P2_SECRET_KEY", err.Error()}
	}
	// On an error the new key file stays: the database then holds either
	// its fingerprint or none, and the file is right for it either way.
	stored, err := store.EnsureMeta(ctx, db.MetaKeyFingerprint, keys.Fingerprint())
	if err != nil {
		return nil, err
	}
	if stored != keys.Fingerprint() {
		if created != "" {
			os.Remove(created)
		}
		return nil, &configError{"P2_SECRET_KEY", "differs from the key this database was first used with; " +
			"with another key every push would fail with a wrong secret and XMPP servers would drop the registrations"}
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
