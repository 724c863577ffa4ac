package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/p2http/p2http"
)

// TestUnreachablePostgres uses a pool that never connected: every call
// reports EUNAVAILABLE.
func TestUnreachablePostgres(t *testing.T) {
	d, err := openPool("postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	check := func(what string, err error) {
		t.Helper()
		if code := p2http.ErrorCode(err); code != p2http.EUNAVAILABLE {
			t.Errorf("%s: %v (code %q), want EUNAVAILABLE", what, err, code)
		}
		var e *p2http.Error
		if errors.As(err, &e) && e.Message != "database unavailable" {
			t.Errorf("%s: message %q", what, e.Message)
		}
	}
	_, err = d.Lookup(ctx, "node")
	check("Lookup", err)
	check("Ping", d.Ping(ctx))
	_, _, err = d.Register(ctx, p2http.Registration{
		Service: p2http.FCM, Device: p2http.DeviceHash("a@b", "c"), Domain: "b", Token: "t", Node: "n",
	})
	check("Register", err)
	check("Unregister", d.Unregister(ctx, "", p2http.FCM, "x"))
	check("RecordPushes", d.RecordPushes(ctx, p2http.PushRecord{Node: "node", Pushes: 1, At: time.Now(), Outcome: p2http.PushDelivered}))
	_, err = d.RemoveDead(ctx, "node", time.Now())
	check("RemoveDead", err)
	_, err = d.EnsureMeta(ctx, "k", "v")
	check("EnsureMeta", err)
	_, _, err = d.MigrationVersion(ctx)
	check("MigrationVersion", err)
	_, err = d.CountRegistrations(ctx)
	check("CountRegistrations", err)
}

func TestIsUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("syntax error"), false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{driver.ErrBadConn, true},
		{errors.New("sql: database is closed"), true},
		{&pq.Error{Code: pqerror.AdminShutdown}, true},
		{&pq.Error{Code: pqerror.CannotConnectNow}, true},
		{&pq.Error{Code: pqerror.TooManyConnections}, true},
		{&pq.Error{Code: pqerror.TRSerializationFailure}, true},
		{&pq.Error{Code: pqerror.UniqueViolation}, false},
		{&pq.Error{Code: pqerror.SyntaxError}, false},
	} {
		if got := isUnavailable(c.err); got != c.want {
			t.Errorf("isUnavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestScanTime(t *testing.T) {
	want := time.Date(2024, 2, 29, 12, 0, 0, 123456000, time.UTC)
	var ts timestamp
	if err := ts.Scan(want.UnixMicro()); err != nil || !ts.Time.Equal(want) || ts.Time.Location() != time.UTC {
		t.Errorf("Scan(int64) = %v, %v", ts.Time, err)
	}
	if err := ts.Scan(want.In(time.FixedZone("X", 3600))); err != nil || !ts.Time.Equal(want) || ts.Time.Location() != time.UTC {
		t.Errorf("Scan(time.Time) = %v, %v", ts.Time, err)
	}
	if err := ts.Scan(nil); err == nil {
		t.Error("Scan(nil) into a NOT NULL timestamp succeeded")
	}
	if err := ts.Scan("2024-02-29"); err == nil {
		t.Error("Scan(string) succeeded")
	}
	var nt nullTimestamp
	if err := nt.Scan(nil); err != nil || nt.Time != nil {
		t.Errorf("Scan(nil) = %v, %v", nt.Time, err)
	}
}
