package keyring_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/keyring"
)

// pins is a database's pinned fingerprint, in memory.
type pins struct {
	fingerprint string
	// race, when set, is pinned by "another process" just before a pin.
	race string
	err  error
}

func (p *pins) PinnedFingerprint(context.Context) (string, error) { return p.fingerprint, p.err }

func (p *pins) PinFingerprint(_ context.Context, fp string) (string, error) {
	if p.err != nil {
		return "", p.err
	}
	if p.race != "" && p.fingerprint == "" {
		p.fingerprint = p.race
	}
	if p.fingerprint == "" {
		p.fingerprint = fp
	}
	return p.fingerprint, nil
}

const loadKey = "load-test-server-key-0123456789abcdef"

// A key given is pinned at first use and refused afterwards when another
// key is given.
func TestLoadPinsTheKey(t *testing.T) {
	ctx := context.Background()
	p := &pins{}
	kr, created, err := keyring.Load(ctx, loadKey, "", p)
	if err != nil || created != "" || p.fingerprint != kr.Fingerprint() {
		t.Fatalf("first use: %v, created %q, pinned %q", err, created, p.fingerprint)
	}
	if _, _, err := keyring.Load(ctx, loadKey, "", p); err != nil {
		t.Fatalf("the same key again: %v", err)
	}
	_, _, err = keyring.Load(ctx, loadKey+"-other", "", p)
	var ke *keyring.KeyError
	if !errors.As(err, &ke) || !strings.HasPrefix(ke.Msg, "differs from the key this database was first used with") {
		t.Fatalf("another key: %v", err)
	}
	if _, _, err := keyring.Load(ctx, "short", "", &pins{}); !errors.As(err, &ke) {
		t.Fatalf("a short key: %v", err)
	}
	dbErr := errors.New("database down")
	if _, _, err := keyring.Load(ctx, loadKey, "", &pins{err: dbErr}); !errors.Is(err, dbErr) || errors.As(err, &ke) {
		t.Fatalf("a failing database: %v", err)
	}
}

// Without a key, the key file is read, or written for a database that
// pins none yet; never written for one that pins a key, and removed again
// when another process pinned a different key meanwhile.
func TestLoadKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "p2.db.key")
	p := &pins{}
	kr, created, err := keyring.Load(ctx, "", file, p)
	if err != nil || created != file || p.fingerprint != kr.Fingerprint() {
		t.Fatalf("new database: %v, created %q", err, created)
	}
	again, created, err := keyring.Load(ctx, "", file, p)
	if err != nil || created != "" || again.Fingerprint() != kr.Fingerprint() {
		t.Fatalf("second start: %v, created %q", err, created)
	}

	os.Remove(file)
	var ke *keyring.KeyError
	if _, _, err := keyring.Load(ctx, "", file, p); !errors.As(err, &ke) || !strings.Contains(ke.Msg, "is missing") {
		t.Fatalf("key file lost: %v", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was written for a database that pins another: %v", err)
	}

	if _, _, err := keyring.Load(ctx, "", file, &pins{race: "v1:another"}); !errors.As(err, &ke) {
		t.Fatalf("lost the race: %v", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the key file of a key that lost the race stayed: %v", err)
	}

	if _, _, err := keyring.Load(ctx, "", filepath.Join(dir, "missing", "p2.db.key"), &pins{}); !errors.As(err, &ke) ||
		!strings.HasPrefix(ke.Msg, "not set, and the key file beside the database failed") {
		t.Fatalf("an unwritable key file: %v", err)
	}
}
