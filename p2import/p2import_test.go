package p2import_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/p2import"
	"github.com/p2http/p2http/p2import/p2importtest"
)

const testKey = "test-server-key-0123456789abcdef0123"

// p2's own README example.
const (
	exDevice = "ec164939a8485ee6b7f7871071a11c7bb18aead5"
	exNode   = "eKxTS5n3bOe0"
	exSecret = "KK4+H5WMfpRG/2zCbuKq6wpX"
)

func keys(t testing.TB) *keyring.Keyring {
	k, err := keyring.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func good() p2import.Row {
	return p2import.Row{Service: "FCM", Device: exDevice, Domain: "example.org", Token: "fcm-token:abc", Node: exNode, Secret: exSecret, Pos: "row 1"}
}

func TestConvert(t *testing.T) {
	k := keys(t)
	r := good()
	r.Domain = "Example.ORG"
	reg, err := p2import.Convert(r, k, "")
	if err != nil {
		t.Fatal(err)
	}
	if reg.App != p2http.DefaultApp || reg.Service != p2http.FCM || reg.Device != exDevice || reg.Domain != "example.org" ||
		reg.Token != "fcm-token:abc" || reg.Node != exNode || reg.SecretKind != p2http.SecretKept {
		t.Fatalf("converted %+v", reg)
	}
	if bytes.Contains(reg.SecretEnc, []byte(exSecret)) {
		t.Fatal("the secret is in clear in the sealed bytes")
	}
	if s, err := k.Open(exNode, reg.SecretEnc); err != nil || s != exSecret {
		t.Fatalf("sealed secret opens to %q, %v", s, err)
	}
	if _, err := k.Open("another-node", reg.SecretEnc); err == nil {
		t.Fatal("the sealed secret opens for another node")
	}
	apns := good()
	apns.Service, apns.Token = "APNS", "0123abcdef"
	if reg, err := p2import.Convert(apns, k, "other"); err != nil || reg.Service != p2http.APNs || reg.App != "other" {
		t.Fatalf("APNS row: %+v, %v", reg, err)
	}

	for _, c := range []struct {
		edit   func(*p2import.Row)
		reason string
	}{
		{func(r *p2import.Row) { r.Service = "GCM" }, p2import.ReasonService},
		{func(r *p2import.Row) { r.Service = "" }, p2import.ReasonService},
		{func(r *p2import.Row) { r.Channel = "room@conference.example.org" }, p2import.ReasonChannel},
		{func(r *p2import.Row) { r.Device = strings.ToUpper(exDevice) }, p2import.ReasonDevice},
		{func(r *p2import.Row) { r.Device = exDevice[:39] }, p2import.ReasonDevice},
		{func(r *p2import.Row) { r.Domain = "" }, p2import.ReasonNoDomain},
		{func(r *p2import.Row) { r.Domain = "alice@example.org" }, p2import.ReasonBadDomain},
		{func(r *p2import.Row) { r.Token = "" }, p2import.ReasonNoToken},
		{func(r *p2import.Row) { r.Token = "has space" }, "token must be printable ASCII without spaces"},
		{func(r *p2import.Row) { r.Service, r.Token = "APNS", "not-hex" }, "an APNs device token is hexadecimal"},
		{func(r *p2import.Row) { r.Node = "" }, p2import.ReasonNoNode},
		{func(r *p2import.Row) { r.Node = "a b" }, p2import.ReasonBadNode},
		{func(r *p2import.Row) { r.Secret = "" }, p2import.ReasonNoSecret},
		{func(r *p2import.Row) { r.Secret = "tab\there" }, p2import.ReasonBadSecret},
	} {
		r := good()
		c.edit(&r)
		_, err := p2import.Convert(r, k, "")
		var re *p2import.RowError
		if !errors.As(err, &re) || re.Reason != c.reason || re.Pos != "row 1" {
			t.Errorf("%+v: %v, want reason %q", r, err, c.reason)
		}
		if err != nil && (strings.Contains(err.Error(), r.Token) && r.Token != "" || strings.Contains(err.Error(), exSecret)) {
			t.Errorf("reason %q holds a value", err)
		}
	}
}

func TestTSV(t *testing.T) {
	in := "service\tdevice\tchannel\tdomain\ttoken\tnode\tsecret\r\n" +
		"FCM\t" + exDevice + "\t\texample.org\tto\\tk\\\\en\\0x\t" + exNode + "\t" + exSecret + "\n" +
		"\n" +
		"APNS\t" + exDevice + "\tNULL\t\\N\tNULL\tn\ts\n" +
		"only\tthree\tcolumns\n"
	src := p2import.NewTSV(io.NopCloser(strings.NewReader(in)))
	defer src.Close()
	ctx := ctxT(t)
	r, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := p2import.Row{Service: "FCM", Device: exDevice, Domain: "example.org", Token: "to\tk\\en\x00x", Node: exNode, Secret: exSecret, Pos: "line 2"}
	if r != want {
		t.Fatalf("row %+v, want %+v", r, want)
	}
	r, err = src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (p2import.Row{Service: "APNS", Device: exDevice, Node: "n", Secret: "s", Pos: "line 4"}); r != want {
		t.Fatalf("row with NULLs %+v", r)
	}
	_, err = src.Next(ctx)
	var re *p2import.RowError
	if !errors.As(err, &re) || re.Error() != "line 5: malformed line: 3 columns, want 7" {
		t.Fatalf("malformed line: %v", err)
	}
	if _, err := src.Next(ctx); err != io.EOF {
		t.Fatalf("end: %v", err)
	}

	long := p2import.NewTSV(strings.NewReader(strings.Repeat("x", 2<<20)))
	if _, err := long.Next(ctx); err == nil || errors.As(err, &re) || err == io.EOF {
		t.Fatalf("overlong line: %v", err)
	}
}

func TestMySQLConfig(t *testing.T) {
	cfg, err := p2import.MySQLConfig("mysql://p2:s%40cret%2Fx@db.example.org:3307/p2")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "p2" || cfg.Passwd != "s@cret/x" || cfg.Net != "tcp" || cfg.Addr != "db.example.org:3307" || cfg.DBName != "p2" {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = p2import.MySQLConfig("mysql://root@/p2?socket=/run/mysqld/mysqld.sock&tls=false")
	if err != nil || cfg.Net != "unix" || cfg.Addr != "/run/mysqld/mysqld.sock" || cfg.User != "root" {
		t.Fatalf("socket config %+v, %v", cfg, err)
	}
	cfg, err = p2import.MySQLConfig("mysql://root@/p2?tls=skip-verify")
	if err != nil || cfg.Addr != "127.0.0.1:3306" || cfg.TLSConfig != "skip-verify" {
		t.Fatalf("defaults %+v, %v", cfg, err)
	}
	for _, bad := range []string{
		"postgres://u:hunter2@h/p2", "mysql://u:hunter2@h/p2?charset=latin1", "mysql://u:hunter2@h/p2?tls=maybe",
		"mysql://u:hunter2@h/a/b", "mysql://u:hunter2@h:port/p2",
	} {
		_, err := p2import.MySQLConfig(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", bad, err)
		}
	}
}

// p2Rows fills p2's table with the README's example, an APNs phone, and
// rows p2http cannot take.
func p2Rows() []p2import.Row {
	return []p2import.Row{
		{Service: "FCM", Device: exDevice, Domain: "example.org", Token: "fcm-token-1", Node: exNode, Secret: exSecret},
		{Service: "APNS", Device: p2http.DeviceHash("bob@example.net", "iphone"), Domain: "example.net", Token: "0a1b2c3d", Node: "n2n2n2n2n2n2", Secret: "s2s2s2s2s2s2s2s2s2s2s2s2"},
		{Service: "FCM", Device: exDevice, Channel: "room@muc.example.org", Domain: "example.org", Token: "fcm-token-1", Node: "n3n3n3n3n3n3", Secret: "s3s3s3s3s3s3s3s3s3s3s3s3"},
		{Service: "GCM", Device: p2http.DeviceHash("carol@example.org", "x"), Domain: "example.org", Token: "t", Node: "n4n4n4n4n4n4", Secret: "s4s4s4s4s4s4s4s4s4s4s4s4"},
		{Service: "FCM", Device: p2http.DeviceHash("dave@example.org", "x"), Domain: "example.org", Node: "n5n5n5n5n5n5", Secret: "s5s5s5s5s5s5s5s5s5s5s5s5"},
	}
}

func TestImportFromMariaDB(t *testing.T) {
	url, p2 := p2importtest.P2(t)
	p2importtest.Insert(t, p2, p2Rows()...)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := ctxT(t)
		k := keys(t)
		importOnce := func(dry bool) p2import.Report {
			src, err := p2import.OpenMySQL(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			rep, err := p2import.Import(ctx, src, d, k, p2import.Options{DryRun: dry, Batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}
		rep := importOnce(true)
		if rep.Read != 5 || rep.Imported != 2 || rep.Invalid != 3 || !rep.DryRun {
			t.Fatalf("dry run %+v", rep)
		}
		if st, _ := d.Stats(ctx); st.Total != 0 {
			t.Fatal("the dry run wrote")
		}
		rep = importOnce(false)
		wantReasons := map[string]int64{p2import.ReasonChannel: 1, p2import.ReasonService: 1, p2import.ReasonNoToken: 1}
		if rep.Read != 5 || rep.Imported != 2 || rep.Skipped() != 0 || rep.Invalid != 3 || fmt.Sprint(rep.InvalidReasons) != fmt.Sprint(wantReasons) {
			t.Fatalf("report %+v", rep)
		}
		// In primary-key order the MUC row follows the README's row.
		for _, line := range rep.InvalidRows {
			if !strings.HasPrefix(line, "row ") {
				t.Fatalf("invalid rows %q", rep.InvalidRows)
			}
		}
		reg, err := d.Lookup(ctx, exNode)
		if err != nil {
			t.Fatal(err)
		}
		if reg.Device != exDevice || reg.Service != p2http.FCM || reg.Domain != "example.org" || reg.SecretKind != p2http.SecretKept {
			t.Fatalf("imported %+v", reg)
		}
		if s, err := k.Open(exNode, reg.SecretEnc); err != nil || s != exSecret {
			t.Fatalf("kept secret %q, %v", s, err)
		}
		if reg, err := d.Lookup(ctx, "n2n2n2n2n2n2"); err != nil || reg.Service != p2http.APNs {
			t.Fatalf("APNs row %+v, %v", reg, err)
		}

		// Twice: nothing changes.
		rep = importOnce(false)
		if rep.Imported != 0 || rep.AlreadyImported != 2 || rep.TokenUpdated != 0 || rep.Invalid != 3 {
			t.Fatalf("second import %+v", rep)
		}
		if st, _ := d.Stats(ctx); st.Total != 2 {
			t.Fatalf("%d registrations after importing twice", st.Total)
		}

		// p2 got a new token meanwhile: the next import takes it.
		if _, err := p2.ExecContext(ctx, `UPDATE target SET token = 'fcm-token-1b' WHERE node = ?`, exNode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p2.Exec(`UPDATE target SET token = 'fcm-token-1' WHERE node = ?`, exNode) })
		rep = importOnce(false)
		if rep.Imported != 0 || rep.AlreadyImported != 1 || rep.TokenUpdated != 1 {
			t.Fatalf("import after a token change in p2 %+v", rep)
		}
		if reg, _ := d.Lookup(ctx, exNode); reg.Token != "fcm-token-1b" {
			t.Fatalf("token %q", reg.Token)
		}
	})
}

// The dump the documentation tells operators to make, made with the real
// mysql client, imports like the table itself.
func TestImportFromMysqlClientDump(t *testing.T) {
	url, p2 := p2importtest.P2(t)
	rows := p2Rows()
	// Values that need escaping in a dump.
	rows = append(rows, p2import.Row{Service: "FCM", Device: p2http.DeviceHash("eve@example.org", "x"), Domain: "example.org",
		Token: `back\slash`, Node: "n6n6n6n6n6n6", Secret: "s6s6s6s6s6s6s6s6s6s6s6s6"})
	p2importtest.Insert(t, p2, rows...)
	client, err := exec.LookPath("mysql")
	if err != nil {
		t.Skip("no mysql client to make the dump with")
	}
	cfg, err := p2import.MySQLConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	cmd := exec.Command(client, "-B", "-N", "-h", host, "-P", port, "-u", cfg.User,
		"-e", "select service, device, channel, domain, token, node, secret from target", cfg.DBName)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+cfg.Passwd)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatalf("mysql -B -N: %v", err)
	}
	d := dbtest.SQLite(t)
	ctx := ctxT(t)
	rep, err := p2import.Import(ctx, p2import.NewTSV(bytes.NewReader(dump)), d, keys(t), p2import.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 6 || rep.Imported != 3 || rep.Invalid != 3 {
		t.Fatalf("report %+v", rep)
	}
	for _, line := range rep.InvalidRows {
		if !strings.HasPrefix(line, "line ") {
			t.Fatalf("invalid rows %q", rep.InvalidRows)
		}
	}
	if reg, err := d.Lookup(ctx, "n6n6n6n6n6n6"); err != nil || reg.Token != `back\slash` {
		t.Fatalf("escaped token %q, %v", reg.Token, err)
	}
	if s, err := keys(t).Open(exNode, func() []byte { r, _ := d.Lookup(ctx, exNode); return r.SecretEnc }()); err != nil || s != exSecret {
		t.Fatalf("kept secret %q, %v", s, err)
	}
}

func TestOpenMySQLUnreachable(t *testing.T) {
	ctx := ctxT(t)
	_, err := p2import.OpenMySQL(ctx, "mysql://root:hunter2@127.0.0.1:1/p2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unreachable MariaDB: %v", err)
	}
}
