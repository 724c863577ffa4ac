package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/internal/benchfake"
)

// sqlUpsert is the upsert p2http's store issues for a registration
// (db/store.go, sqlRegister), with the columns it reads back.
const sqlUpsert = `INSERT INTO registrations
	(app, service, device, domain, token, node, secret_kind, secret_enc, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (app, service, device) DO UPDATE
	SET token = excluded.token, updated_at = excluded.updated_at
	RETURNING app, service, device, domain, token, node, secret_kind, secret_enc, created_at, updated_at, last_push_at,
		push_count, last_push_outcome, last_failure_at, last_failure_reason`

// regWorkload issues registrations: every other one registers a new device
// (account r<k>@example.org, device id dev-<k>), the others re-register a
// device registered earlier with a new token, as Conversations does at every
// login.
type regWorkload struct {
	conc    int
	next    atomic.Int64 // the next new device
	ok      atomic.Int64
	created atomic.Int64
	renewed atomic.Int64
}

// registration is what one operation registers.
type registration struct {
	account, deviceID, token string
	fresh                    bool
}

// pick decides what request seq registers.
func (w *regWorkload) pick(seq uint64) registration {
	// Devices more than two rounds of workers back have been registered.
	known := w.next.Load() - int64(2*w.conc)
	if seq%2 == 0 || known < 1 {
		k := w.next.Add(1) - 1
		return registration{account: fmt.Sprintf("r%d@%s", k, httpDomain), deviceID: "dev-" + strconv.FormatInt(k, 10),
			token: benchfake.Token(int(k % 1e9)), fresh: true}
	}
	k := rand.Int64N(known)
	return registration{account: fmt.Sprintf("r%d@%s", k, httpDomain), deviceID: "dev-" + strconv.FormatInt(k, 10),
		token: benchfake.Token(int(k%1e9)) + "-" + strconv.FormatUint(seq, 10)}
}

// done counts a successful registration.
func (w *regWorkload) done(r registration) {
	w.ok.Add(1)
	if r.fresh {
		w.created.Add(1)
	} else {
		w.renewed.Add(1)
	}
}

// register is the register scenario on one database ("postgres" or
// "sqlite"): C clients POST /v1/register; the ceiling is the same upserts
// issued straight to a fresh database of the same kind by the generator,
// with a prepared statement and the pool sizes p2http uses (16 connections
// on PostgreSQL, 8 on SQLite). Each round starts from empty databases.
func (b *bench) register(ctx context.Context, driver string) error {
	name := "register_" + driver
	conc := b.cfg.regConc
	var cleanups []func()
	defer func() {
		for _, c := range cleanups {
			c()
		}
	}()
	// fresh returns the URL of a new empty database, and the DSN of the
	// same database for database/sql.
	fresh := func(label string) (url, dsn string, err error) {
		if driver == "postgres" {
			dbName, url, err := b.pg.create(ctx, label)
			if err != nil {
				return "", "", err
			}
			cleanups = append(cleanups, func() { b.pg.drop(dbName) })
			return url, url, nil
		}
		path := filepath.Join(b.dir, label+".db")
		// p2http's SQLite settings (db/db.go, sqliteParams).
		return "sqlite:" + path, "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate", nil
	}

	var rss float64
	ceil, got := b.sideBySide(name, func(r int) stats {
		url, dsn, err := fresh(fmt.Sprintf("regceil%d", r))
		if err != nil {
			return failedRun(err)
		}
		st, err := b.registerDirect(ctx, driver, url, dsn, conc)
		if err != nil {
			return failedRun(err)
		}
		return st
	}, func(r int) stats {
		url, _, err := fresh(fmt.Sprintf("regp2http%d", r))
		if err != nil {
			return failedRun(err)
		}
		s, err := b.startP2HTTP(ctx, p2httpOptions{label: fmt.Sprintf("%s-%d", name, r), database: url})
		if err != nil {
			return failedRun(err)
		}
		defer s.stop()
		st := b.registerAPI(ctx, s, conc, fmt.Sprintf("%s-r%d", name, r))
		rss = max(rss, s.peakRSS())
		return st
	})
	ratio := got.Throughput() / ceil.Throughput()
	label := loadLabel(b, conc, 0) + ", half new, half re-registrations"
	what := "PostgreSQL"
	if driver == "sqlite" {
		what = "SQLite"
	}
	b.rows = append(b.rows,
		row{Scenario: name, Path: "ceiling: generator -> " + what + " upserts", Load: label, Stats: ceil},
		row{Scenario: name, Path: "generator -> p2http -> " + what, Load: label, Stats: got, RSS: rss, Ratio: ratio})
	b.targets = append(b.targets, target{Name: name, Value: ratio, Op: ">=", Limit: 0.5}.check(got.ErrorCount() == 0 && ceil.ErrorCount() == 0))
	return nil
}

// registerAPI runs the workload through p2http's POST /v1/register.
func (b *bench) registerAPI(ctx context.Context, s *sut, conc int, profileName string) stats {
	api := newAPIClient(s.base, conc)
	w := &regWorkload{conc: conc}
	bufs := make([][]byte, conc)
	for i := range bufs {
		bufs[i] = make([]byte, 512)
	}
	cpu0 := s.cpuTime()
	wait := b.profile(s.pprof, profileName+"-p2http")
	st := closedLoop(ctx, conc, b.cfg.warmup, b.cfg.duration, func(ctx context.Context, worker int, seq uint64) error {
		r := w.pick(seq)
		body, err := json.Marshal(map[string]string{"service": "fcm", "account": r.account, "device_id": r.deviceID, "token": r.token})
		if err != nil {
			return err
		}
		status, answer, err := api.post(ctx, "/v1/register", body, bufs[worker])
		if err != nil {
			return err
		}
		if status != http.StatusCreated && status != http.StatusOK {
			return httpError(status, answer)
		}
		w.done(r)
		return nil
	})
	wait()
	st.Done, st.CPU = w.ok.Load(), s.cpuTime()-cpu0
	return st
}

// registerDirect runs the workload as upserts straight to the database:
// the ceiling. url is the database for p2http's migrations, dsn the same
// for database/sql.
func (b *bench) registerDirect(ctx context.Context, driver, url, dsn string, conc int) (stats, error) {
	// The schema, migrated by p2http's own code.
	store, err := db.Open(ctx, url)
	if err != nil {
		return stats{}, err
	}
	store.Close()
	sqlDB, err := sql.Open(driver, dsn)
	if err != nil {
		return stats{}, err
	}
	defer sqlDB.Close()
	q := sqlUpsert
	if driver == "postgres" {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(16)
		q = rebindDollar(q)
	} else {
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
	}
	st, err := sqlDB.PrepareContext(ctx, q)
	if err != nil {
		return stats{}, err
	}
	defer st.Close()
	w := &regWorkload{conc: conc}
	res := closedLoop(ctx, conc, b.cfg.warmup, b.cfg.duration, func(ctx context.Context, worker int, seq uint64) error {
		r := w.pick(seq)
		device := p2http.DeviceHash(r.account, r.deviceID)
		now := time.Now().UTC()
		var ts any = now
		if driver == "sqlite" {
			ts = now.UnixMicro()
		}
		var (
			app, service, dev, domain, token, node, kind string
			secret                                       []byte
			created, updated, last                       any
			count, outcome, failedAt, reason             any
		)
		err := st.QueryRowContext(ctx, string(p2http.DefaultApp), string(p2http.FCM), device, httpDomain, r.token, p2http.NewNode(),
			string(p2http.SecretDerived), nil, ts, ts).
			Scan(&app, &service, &dev, &domain, &token, &node, &kind, &secret, &created, &updated, &last,
				&count, &outcome, &failedAt, &reason)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("timeout: %w", err)
			}
			return fmt.Errorf("database error: %w", err)
		}
		w.done(r)
		return nil
	})
	res.Done = w.ok.Load()
	return res, nil
}

// rebindDollar turns ? placeholders into $1, $2, … for PostgreSQL.
func rebindDollar(q string) string {
	out := make([]byte, 0, len(q)+16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, '$')
			out = strconv.AppendInt(out, int64(n), 10)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}
