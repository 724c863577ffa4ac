package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http"
)

// Copy holds every row it writes to p2http.Registration.Validate, as every
// writer does: a row that slipped into the source by hand stops it, and
// nothing of its batch is written.
func TestCopyToRefusesInvalidRow(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *DB {
		d, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	src, dst := open("src.db"), open("dst.db")
	for _, dev := range []string{"a", "b"} {
		if _, _, err := src.Register(ctx, p2http.Registration{Service: p2http.FCM, Device: p2http.DeviceHash("u@example.org", dev),
			Domain: "example.org", Token: "token-" + dev, Node: p2http.NewNode()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.x.ExecContext(ctx, `UPDATE registrations SET token = 'to ken' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	_, err := src.CopyTo(ctx, dst, 0, nil)
	if p2http.ErrorCode(err) != p2http.EINVALID || !strings.HasPrefix(p2http.ErrorMessage(err), "registration id 2 of the source: token must be") {
		t.Fatalf("copy of an invalid row: %v", err)
	}
	if st, err := dst.Stats(ctx); err != nil || st.Total != 0 {
		t.Fatalf("written anyway: %+v %v", st, err)
	}
}
