package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/db/dbtest"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/migrations"
	"github.com/p2http/p2http/p2import"
	"github.com/p2http/p2http/p2import/p2importtest"
	"github.com/p2http/p2http/relay"
	"github.com/p2http/p2http/stack"
)

const admKey = "admin-test-server-key-0123456789abcdef"

// admRun runs one command in-process, as main does, and returns what it
// printed.
func admRun(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = dispatch(ctx, args, envOf(env), &out, &errOut)
	return out.String(), errOut.String(), err
}

// admMust is admRun that fails the test on an error.
func admMust(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, err := admRun(t, env, args...)
	if err != nil {
		t.Fatalf("p2http %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func admCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// p2 phones: what p2's target table holds for them.
type p2Phone struct {
	p2import.Row
	account, deviceID string // "" when unknown (the README's example)
}

// p2's README example: only the stored row is known.
var readmePhone = p2Phone{Row: p2import.Row{Service: "FCM", Device: "ec164939a8485ee6b7f7871071a11c7bb18aead5",
	Domain: "example.org", Token: "p2-fcm-token-readme", Node: "eKxTS5n3bOe0", Secret: "KK4+H5WMfpRG/2zCbuKq6wpX"}}

func knownPhone(service, account, deviceID, token, node, secret string) p2Phone {
	j, err := relay.NormalizeAccount(account)
	if err != nil {
		panic(err)
	}
	return p2Phone{Row: p2import.Row{Service: service, Device: p2http.DeviceHash(j.String(), deviceID), Domain: j.Domainpart(),
		Token: token, Node: node, Secret: secret}, account: account, deviceID: deviceID}
}

var (
	alicePhone = knownPhone("FCM", "alice@example.org", "android-id-1", "p2-fcm-token-alice", "aLiCeNoDe123", "aliceSecret+aliceSecret/")
	bobPhone   = knownPhone("APNS", "bob@example.net", "iphone-1", "0a1b2c3d4e5f", "b0bN0de+/012", "b0bSecret/+b0bSecret/+12")
	// carol registered with p2http before the import: her p2 row is stale.
	carolPhone = knownPhone("FCM", "carol@example.org", "android-c", "p2-fcm-token-carol", "CaRoLnOdE123", "carolSecret+carolSecret/")
	p2Phones   = []p2Phone{readmePhone, alicePhone, bobPhone, carolPhone}
	// Rows p2http cannot take.
	p2Invalid = []p2import.Row{
		{Service: "FCM", Device: readmePhone.Device, Channel: "room@muc.example.org", Domain: "example.org",
			Token: "p2-muc-token", Node: "mUcNoDe12345", Secret: "mucSecret+mucSecret+muc1"},
		{Service: "GCM", Device: p2http.DeviceHash("old@example.org", "x"), Domain: "example.org",
			Token: "p2-gcm-token", Node: "gCmNoDe12345", Secret: "gcmSecret+gcmSecret+gcm1"},
	}
)

// secretsOf lists every secret of p2's table.
func secretsOf() []string {
	var out []string
	for _, p := range p2Phones {
		out = append(out, p.Secret)
	}
	for _, r := range p2Invalid {
		out = append(out, r.Secret)
	}
	return out
}

// fillP2 creates p2's table in a fresh MariaDB database and fills it.
func fillP2(t *testing.T) string {
	url, p2 := p2importtest.P2(t)
	for _, p := range p2Phones {
		p2importtest.Insert(t, p2, p.Row)
	}
	p2importtest.Insert(t, p2, p2Invalid...)
	return url
}

// pushAPI is the real API over store with fake FCM and APNs behind the
// real senders.
type pushAPI struct {
	URL  string
	FCM  *fake.FCM
	APNs *fake.APNs
}

func newPushAPI(t *testing.T, store *db.DB, keys *keyring.Keyring) *pushAPI {
	t.Helper()
	p := &pushAPI{FCM: fake.NewFCM(), APNs: fake.NewAPNs()}
	t.Cleanup(p.FCM.Close)
	t.Cleanup(p.APNs.Close)
	f, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: p.FCM.Credentials, Endpoint: p.FCM.Endpoint(), HTTPClient: p.FCM.Client})
	if err != nil {
		t.Fatal(err)
	}
	a, err := apns.New(apns.Config{Endpoint: p.APNs.Endpoint(), Topic: p.APNs.Topic, SigningKey: p.APNs.SigningKey,
		KeyID: p.APNs.KeyID, TeamID: p.APNs.TeamID, HTTPClient: p.APNs.Client})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := stack.New(stack.Config{JID: "push.example.org", Store: store, Database: store, Keyring: keys, Logger: log,
		Senders: apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: f, p2http.APNs: a}, nil), Version: "test"})
	t.Cleanup(func() { st.Close(context.Background()) })
	srv := httptest.NewServer(st.Handler)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// post sends a JSON body and returns the status and decoded answer.
func (p *pushAPI) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(p.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	json.NewDecoder(res.Body).Decode(&v)
	return res.StatusCode, v
}

func (p *pushAPI) push(t *testing.T, node, secret, domain string) (int, map[string]any) {
	return p.post(t, "/v1/push", map[string]any{"node": node, "secret": secret, "domain": domain, "important": true})
}

func (p *pushAPI) register(t *testing.T, ph p2Phone, token string) (int, map[string]any) {
	svc := strings.ToLower(ph.Service)
	return p.post(t, "/v1/register", map[string]any{"service": svc, "account": ph.account, "device_id": ph.deviceID, "token": token})
}

// The test: p2's exact table in MariaDB, imported into SQLite and
// PostgreSQL through the command; the old nodes and secrets push through
// the real API, a wrong secret does not, a phone that registers again gets
// its old node and secret back, and no secret is stored in clear.
func TestImportP2EndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		p2URL := fillP2(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "p2http.db")
		// No P2_SECRET_KEY: the key file beside the database, as serve.
		env := map[string]string{"P2_DATABASE_URL": "sqlite:" + path}
		importEndToEnd(t, p2URL, env, func() *keyring.Keyring {
			key, created, err := keyring.LoadOrCreateKeyFile(path + ".key")
			if err != nil || created {
				t.Fatalf("the import did not leave the key file beside the database: %v", err)
			}
			k, _ := keyring.New(key)
			return k
		}, func(t *testing.T) string {
			var all []byte
			files, _ := filepath.Glob(path + "*")
			for _, f := range files {
				if f == path+".key" {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			if len(all) == 0 {
				t.Fatal("nothing to scan")
			}
			return string(all)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		p2URL := fillP2(t)
		url := dbtest.PostgresSchemaURL(t)
		env := map[string]string{"P2_DATABASE_URL": url, "P2_SECRET_KEY": admKey}
		importEndToEnd(t, p2URL, env, func() *keyring.Keyring {
			k, _ := keyring.New(admKey)
			return k
		}, func(t *testing.T) string {
			raw, err := sql.Open("postgres", url)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var regs, meta string
			if err := raw.QueryRow(`SELECT string_agg(r::text, E'\n') FROM registrations r`).Scan(&regs); err != nil {
				t.Fatal(err)
			}
			if err := raw.QueryRow(`SELECT string_agg(m::text, E'\n') FROM meta m`).Scan(&meta); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(regs, readmePhone.Node) {
				t.Fatal("the dump of the table misses the imported rows")
			}
			return regs + "\n" + meta
		})
	})
}

func importEndToEnd(t *testing.T, p2URL string, env map[string]string, keys func() *keyring.Keyring, dump func(*testing.T) string) {
	ctx := admCtx(t)
	// carol registered with p2http before the import.
	pre, err := db.Open(ctx, env["P2_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	ourCarol, _, err := pre.Register(ctx, p2http.Registration{Service: p2http.FCM, Device: carolPhone.Device,
		Domain: "example.org", Token: "p2http-token-carol", Node: p2http.NewNode()})
	pre.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, err := admRun(t, env, "import-p2", "--from", p2URL, "--json")
	if err != nil {
		t.Fatalf("import-p2: %v\n%s%s", err, out, errOut)
	}
	var rep p2import.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if rep.Read != 6 || rep.Imported != 3 || rep.RegisteredSince != 1 || rep.AlreadyImported != 0 || rep.Invalid != 2 ||
		rep.InvalidReasons[p2import.ReasonChannel] != 1 || rep.InvalidReasons[p2import.ReasonService] != 1 {
		t.Fatalf("first import %+v", rep)
	}
	// Twice (at switch-over, say): nothing changes but the token p2 got
	// meanwhile for the README's phone, and the text report says so.
	p2, err := p2import.OpenMySQLDB(ctx, p2URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.ExecContext(ctx, `UPDATE target SET token = 'p2-fcm-token-readme-2' WHERE node = ?`, readmePhone.Node); err != nil {
		t.Fatal(err)
	}
	out2 := admMust(t, env, "import-p2", "--from", p2URL)
	for _, want := range []string{"read 6 rows of p2's target table", "imported                    0",
		"already imported            2", "token updated               1", "registered since            1",
		"invalid                     2", "row "} {
		if !strings.Contains(out2, want) {
			t.Errorf("second report lacks %q:\n%s", want, out2)
		}
	}
	for _, o := range []string{out, errOut, out2} {
		for _, p := range p2Phones {
			for _, v := range []string{p.Token, p.Secret, p.Node, "p2-fcm-token-readme-2"} {
				if strings.Contains(o, v) {
					t.Fatalf("the import printed a token, secret or node:\n%s", o)
				}
			}
		}
	}

	store, err := db.Open(ctx, env["P2_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if st, _ := store.Stats(ctx); st.Total != 4 || st.BySecret[p2http.SecretKept] != 3 {
		t.Fatalf("stored %+v", st)
	}
	k := keys()
	p := newPushAPI(t, store, k)

	// The XMPP servers push with what p2 gave out.
	for _, ph := range []p2Phone{readmePhone, alicePhone, bobPhone} {
		st, body := p.push(t, ph.Node, ph.Secret, ph.Domain)
		if st != http.StatusOK || body["delivered"] != true {
			t.Fatalf("push with p2's node and secret (%s): %d %v", ph.Service, st, body)
		}
	}
	fcmReqs := p.FCM.Requests()
	if len(fcmReqs) != 2 || p.FCM.Tokens()[0] != "p2-fcm-token-readme-2" || p.FCM.Tokens()[1] != alicePhone.Token {
		t.Fatalf("FCM got %d pushes, tokens %q", len(fcmReqs), p.FCM.Tokens())
	}
	if acct := fcmReqs[0].FCMMessage().Data.Account; acct != readmePhone.Device {
		t.Fatalf("FCM account %v, want p2's device", acct)
	}
	if reqs := p.APNs.Requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0].Path, "/"+bobPhone.Token) {
		t.Fatalf("APNs got %v", reqs)
	}
	if st, _ := p.push(t, readmePhone.Node, "KK4+H5WMfpRG/2zCbuKq6wpY", "example.org"); st != http.StatusForbidden {
		t.Fatalf("wrong secret: %d, want 403", st)
	}
	if st, _ := p.push(t, readmePhone.Node, readmePhone.Secret, "example.net"); st != http.StatusNotFound {
		t.Fatalf("node of another domain: %d, want 404", st)
	}
	// carol's stale p2 row was not imported: hers is ours.
	if st, _ := p.push(t, carolPhone.Node, carolPhone.Secret, "example.org"); st != http.StatusNotFound {
		t.Fatalf("carol's stale p2 node: %d, want 404", st)
	}
	if st, _ := p.push(t, ourCarol.Node, k.Secret(ourCarol.Node), "example.org"); st != http.StatusOK {
		t.Fatalf("carol's p2http node: %d", st)
	}

	// Phones register again (Conversations does at every login): they get
	// p2's node and secret back, and the new token is used.
	for _, ph := range []p2Phone{alicePhone, bobPhone} {
		token := "fedcba9876"
		st, body := p.register(t, ph, token)
		if st != http.StatusOK && st != http.StatusCreated || body["node"] != ph.Node || body["secret"] != ph.Secret {
			t.Fatalf("re-registration of an imported phone: %d %v", st, body)
		}
		if st, _ := p.push(t, ph.Node, ph.Secret, ph.Domain); st != http.StatusOK {
			t.Fatalf("push after re-registration: %d", st)
		}
	}
	if toks := p.FCM.Tokens(); toks[len(toks)-1] != "fedcba9876" {
		t.Fatalf("the re-registered token was not used: %q", toks)
	}
	if st, body := p.register(t, carolPhone, "new-carol-token"); body["node"] != ourCarol.Node {
		t.Fatalf("carol re-registering: %d %v", st, body)
	}

	// No secret in clear, in any form, anywhere in the database.
	store.Close()
	all := dump(t)
	for _, s := range secretsOf() {
		if strings.Contains(all, s) || strings.Contains(strings.ToLower(all), hex.EncodeToString([]byte(s))) {
			t.Fatalf("a p2 secret is stored in clear")
		}
	}
}

// import-p2 takes the key as serve does: a P2_SECRET_KEY other than the
// one the database was first used with is refused before anything is read.
func TestImportP2RefusesAnotherKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p2.db")
	tsv := filepath.Join(t.TempDir(), "p2.tsv")
	r := readmePhone.Row
	if err := os.WriteFile(tsv, []byte(strings.Join([]string{r.Service, r.Device, "", r.Domain, r.Token, r.Node, r.Secret}, "\t")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"P2_DATABASE_URL": "sqlite:" + path, "P2_SECRET_KEY": admKey}
	if out := admMust(t, env, "import-p2", "--from-tsv", tsv); !strings.Contains(out, "imported                    1") {
		t.Fatalf("import: %s", out)
	}
	env["P2_SECRET_KEY"] = "another-server-key-0123456789abcdefghij"
	_, _, err := admRun(t, env, "import-p2", "--from-tsv", tsv)
	if err == nil || !strings.Contains(err.Error(), "P2_SECRET_KEY") {
		t.Fatalf("import with another key: %v", err)
	}
	// PostgreSQL needs the key in the environment.
	_, _, err = admRun(t, map[string]string{"P2_DATABASE_URL": dbtest.PostgresURL()}, "import-p2", "--from-tsv", tsv)
	if err == nil || !strings.Contains(err.Error(), "P2_SECRET_KEY") {
		t.Fatalf("import into PostgreSQL without a key: %v", err)
	}
}

func TestImportP2Usage(t *testing.T) {
	env := map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db"), "P2_SECRET_KEY": admKey}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import-p2"}, "either --from"},
		{[]string{"import-p2", "--from", "mysql://a@b/c", "--from-tsv", "x"}, "either --from"},
		{[]string{"import-p2", "--from-tsv", "x", "--batch", "0"}, "--batch"},
		{[]string{"import-p2", "--from-tsv", "x", "--app", " "}, "--app"},
		{[]string{"import-p2", "--from-tsv", "x", "extra"}, "unexpected argument"},
		{[]string{"import-p2", "--from-tsv", filepath.Join(t.TempDir(), "missing.tsv")}, "no such file"},
		{[]string{"import-p2", "--from", "mysql://root:hunter2@127.0.0.1:1/p2"}, "connect to MariaDB"},
		{[]string{"import-p2", "--from", "http://root:hunter2@127.0.0.1/p2"}, "mysql://"},
	} {
		out, errOut, err := admRun(t, env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
		if strings.Contains(out+errOut+errString(err), "hunter2") {
			t.Errorf("%q: the password was printed", c.args)
		}
	}
	if out, errOut, err := admRun(t, env, "import-p2", "-h"); err != nil || !strings.Contains(out, "-from-tsv") || errOut != "" {
		t.Fatalf("import-p2 -h: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}

// A token given to doctor without --token, or as a command, is not
// repeated in the error.
func TestStrayArgumentsNotRepeated(t *testing.T) {
	env := map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db"), "P2_SECRET_KEY": admKey}
	const token = "fcmTOKENhunter2:APA91b"
	for _, args := range [][]string{{"doctor", token}, {"stats", token}, {"serve", token}, {token}} {
		out, errOut, err := admRun(t, env, args...)
		if err == nil {
			t.Errorf("%q succeeded", args)
		}
		if strings.Contains(out+errOut+errString(err), "hunter2") {
			t.Errorf("%q: the token was printed: %v", args, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// copy moves an SQLite database — imported p2 registrations and ones
// registered here — to PostgreSQL, and p2http serves from the copy with
// the key of the SQLite key file.
func TestCopyToPostgres(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p2.db")
	src := map[string]string{"P2_DATABASE_URL": "sqlite:" + path}
	var tsv strings.Builder
	for _, p := range p2Phones {
		r := p.Row
		tsv.WriteString(strings.Join([]string{r.Service, r.Device, "", r.Domain, r.Token, r.Node, r.Secret}, "\t") + "\n")
	}
	tsvPath := filepath.Join(dir, "p2.tsv")
	os.WriteFile(tsvPath, []byte(tsv.String()), 0o600)
	admMust(t, src, "import-p2", "--from-tsv", tsvPath)
	ctx := admCtx(t)
	s, err := db.Open(ctx, src["P2_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	derived, _, err := s.Register(ctx, p2http.Registration{Service: p2http.FCM, Device: p2http.DeviceHash("dan@example.org", "d"),
		Domain: "example.org", Token: "dan-token", Node: p2http.NewNode()})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	target := dbtest.PostgresSchemaURL(t)
	out := admMust(t, src, "copy", "--to", target, "--batch", "2")
	if !strings.Contains(out, "copied 5 registrations from sqlite to postgres: 5 written, 0 already up to date, 0 node conflicts; 1 new meta rows") ||
		!strings.Contains(out, "P2_SECRET_KEY set to the key in "+path+".key") {
		t.Fatalf("copy: %s", out)
	}
	if strings.Contains(out, target) {
		t.Fatal("the target URL was printed")
	}
	out = admMust(t, src, "copy", "--to", target)
	if !strings.Contains(out, "copied 5 registrations from sqlite to postgres: 0 written, 5 already up to date") {
		t.Fatalf("second copy: %s", out)
	}

	// Serve from PostgreSQL with the SQLite database's key.
	key, _, err := keyring.LoadOrCreateKeyFile(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": target, "P2_SECRET_KEY": key})
	k, _ := keyring.New(key)
	for _, c := range []struct{ node, secret string }{
		{readmePhone.Node, readmePhone.Secret}, {bobPhone.Node, bobPhone.Secret}, {derived.Node, k.Secret(derived.Node)},
	} {
		b, _ := json.Marshal(map[string]any{"node": c.node, "secret": c.secret, "domain": "", "important": false})
		res, err := http.Post(base+"/v1/push", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("push from the copy: %d", res.StatusCode)
		}
	}

	// A database first used with another key is refused.
	otherURL := dbtest.PostgresSchemaURL(t)
	o, err := db.Open(ctx, otherURL)
	if err != nil {
		t.Fatal(err)
	}
	o.EnsureMeta(ctx, db.MetaKeyFingerprint, "v1:0000")
	o.Close()
	_, _, err = admRun(t, src, "copy", "--to", otherURL)
	if err == nil || !strings.Contains(err.Error(), "another server key") {
		t.Fatalf("copy to a database of another key: %v", err)
	}
	o, _ = db.Open(ctx, otherURL)
	defer o.Close()
	if st, _ := o.Stats(ctx); st.Total != 0 {
		t.Fatal("copied into a database of another key")
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"copy"}, "--to is required"},
		{[]string{"copy", "--to", src["P2_DATABASE_URL"]}, "names the database copied from"},
		{[]string{"copy", "--to", target, "--batch", "99999"}, "--batch"},
		{[]string{"copy", "--to", "mysql://x@y/z"}, "unsupported database URL"},
	} {
		if _, _, err := admRun(t, src, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

// seed registers phones with the given update and push times.
func seed(t *testing.T, url string, regs ...p2http.Registration) {
	t.Helper()
	ctx := admCtx(t)
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Import(ctx, regs, false); err != nil {
		t.Fatal(err)
	}
}

func phoneAt(name, domain string, svc p2http.Service, updated time.Time, pushed *time.Time) p2http.Registration {
	token := "token-" + name
	if svc == p2http.APNs {
		token = "abcdef"
	}
	return p2http.Registration{Service: svc, Device: p2http.DeviceHash(name+"@"+domain, "phone"), Domain: domain,
		Token: token, Node: p2http.NewNode(), UpdatedAt: updated,
		PushHistory: p2http.PushHistory{LastPushAt: pushed}}
}

func TestStatsCommand(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "p2.db")
	env := map[string]string{"P2_DATABASE_URL": url}
	now := time.Now()
	seed(t, url,
		phoneAt("a", "example.org", p2http.FCM, now, nil),
		phoneAt("b", "example.org", p2http.APNs, now, nil),
		phoneAt("c", "example.org", p2http.FCM, now, nil),
		phoneAt("d", "example.net", p2http.FCM, now, nil),
	)
	out := admMust(t, env, "stats")
	for _, want := range []string{"registrations 4", "  fcm                           3", "  apns                          1",
		"  derived                       4", "  default                       4",
		"domain           total        fcm       apns\nexample.org          3          2          1\nexample.net          1          1          0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lack %q:\n%s", want, out)
		}
	}
	var st struct {
		db.Stats
		DomainsOmitted int `json:"domains_omitted"`
	}
	out = admMust(t, env, "stats", "--json", "--top", "1")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Total != 4 || st.ByService[p2http.FCM] != 3 || len(st.Domains) != 1 || st.Domains[0].Domain != "example.org" ||
		st.Domains[0].ByService[p2http.APNs] != 1 || st.DomainsOmitted != 1 {
		t.Fatalf("stats --json %s", out)
	}
	if out := admMust(t, env, "stats", "--top", "1"); !strings.Contains(out, "… and 1 more domains") {
		t.Fatalf("stats --top:\n%s", out)
	}
	if _, _, err := admRun(t, env, "stats", "--top", "-1"); err == nil {
		t.Fatal("negative --top accepted")
	}
	// --database-url overrides the environment, as for serve.
	other := "sqlite:" + filepath.Join(t.TempDir(), "other.db")
	if out := admMust(t, env, "stats", "--database-url", other); !strings.Contains(out, "registrations 0") {
		t.Fatalf("stats --database-url:\n%s", out)
	}
	// The environment is checked as serve checks it.
	if _, _, err := admRun(t, map[string]string{"P2_DATABASE_URL": url, "P2_LOG_FORMAT": "xml"}, "stats"); err == nil ||
		!strings.Contains(err.Error(), "P2_LOG_FORMAT") {
		t.Fatalf("bad environment: %v", err)
	}
}

func TestPurgeCommand(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + filepath.Join(t.TempDir(), "p2.db")
		purgeCommand(t, url, map[string]string{"P2_DATABASE_URL": url})
	})
	t.Run("postgres", func(t *testing.T) {
		url := dbtest.PostgresSchemaURL(t)
		purgeCommand(t, url, map[string]string{"P2_DATABASE_URL": url, "P2_SECRET_KEY": admKey})
	})
	env := map[string]string{"P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"purge"}, "--not-seen-for is required"},
		{[]string{"purge", "--not-seen-for", "12h"}, "at least 1d"},
		{[]string{"purge", "--not-seen-for", "ninety days"}, "not a duration"},
		{[]string{"purge", "--not-seen-for", "-5d"}, "too many days"},
	} {
		if _, _, err := admRun(t, env, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

func purgeCommand(t *testing.T, url string, env map[string]string) {
	day := 24 * time.Hour
	now := time.Now()
	recent := now.Add(-5 * day)
	old := now.Add(-100 * day)
	fresh := phoneAt("fresh", "example.org", p2http.FCM, now.Add(-day), nil)
	pushed := phoneAt("pushed", "example.org", p2http.FCM, now.Add(-400*day), &recent)
	stale := phoneAt("stale", "example.org", p2http.FCM, now.Add(-91*day), nil)
	stalePushed := phoneAt("stale-pushed", "example.org", p2http.APNs, now.Add(-300*day), &old)
	seed(t, url, fresh, pushed, stale, stalePushed)

	out := admMust(t, env, "purge", "--not-seen-for", "90d", "--dry-run")
	if !strings.HasPrefix(out, "would delete 2 registrations not seen for 90d") {
		t.Fatalf("dry run: %s", out)
	}
	out = admMust(t, env, "purge", "--not-seen-for", "90d")
	if !strings.HasPrefix(out, "deleted 2 registrations not seen for 90d") {
		t.Fatalf("purge: %s", out)
	}
	ctx := admCtx(t)
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, r := range []p2http.Registration{fresh, pushed} {
		if _, err := d.Lookup(ctx, r.Node); err != nil {
			t.Fatalf("active registration purged: %v", err)
		}
	}
	for _, r := range []p2http.Registration{stale, stalePushed} {
		if _, err := d.Lookup(ctx, r.Node); p2http.ErrorCode(err) != p2http.ENOTFOUND {
			t.Fatalf("inactive registration kept: %v", err)
		}
	}
	if out := admMust(t, env, "purge", "--not-seen-for", "2d"); !strings.HasPrefix(out, "deleted 1 registrations not seen for 2d") {
		t.Fatalf("purge 2d: %s", out)
	}
}

func TestMigrateCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	out := admMust(t, map[string]string{"P2_DATABASE_URL": "sqlite:" + path}, "migrate")
	if want := fmt.Sprintf("sqlite database migrated: schema version %d\n", migrations.Latest()); out != want {
		t.Fatalf("migrate: %q", out)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".key"); err == nil {
		t.Fatal("migrate made a key file: it needs no key")
	}
	pg := dbtest.PostgresSchemaURL(t)
	out = admMust(t, map[string]string{"P2_DATABASE_URL": pg, "P2_SECRET_KEY": admKey}, "migrate")
	if want := fmt.Sprintf("postgres database migrated: schema version %d\n", migrations.Latest()); out != want {
		t.Fatalf("migrate: %q", out)
	}
	if _, _, err := admRun(t, map[string]string{"P2_DATABASE_URL": "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
		"P2_SECRET_KEY": admKey}, "migrate"); err == nil || !strings.Contains(err.Error(), "P2_DATABASE_URL") {
		t.Fatalf("migrate an unreachable database: %v", err)
	}
}

func TestVersionHelpAndUnknownCommands(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := admMust(t, nil, args...)
		if !strings.HasPrefix(out, "p2http "+buildinfo.Version(version)+" (go") {
			t.Fatalf("%q: %q", args, out)
		}
	}
	version = "v9.9.9-test"
	t.Cleanup(func() { version = "" })
	if out := admMust(t, nil, "version"); !strings.HasPrefix(out, "p2http v9.9.9-test (") {
		t.Fatalf("version with -X main.version: %q", out)
	}
	out := admMust(t, nil, "help")
	for _, c := range (&cli{}).program().List() {
		if !strings.Contains(out, "  "+c.Name+" ") {
			t.Errorf("help does not list %s:\n%s", c.Name, out)
		}
	}
	if _, _, err := admRun(t, nil, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
	if _, _, err := admRun(t, nil, "version", "extra"); err == nil {
		t.Fatal("version took an argument")
	}
	// -h lists the commands and serve's flags on standard output, as help
	// does, and is no error.
	out, errOut, err := admRun(t, nil, "-h")
	if err != nil || !strings.Contains(out, "import-p2") || !strings.Contains(out, "Flags of serve") ||
		!strings.Contains(out, "-database-url") || errOut != "" {
		t.Fatalf("-h: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}

// serveIn runs dispatch with args until the test ends and returns the base
// URL and the logs.
func serveIn(t *testing.T, env map[string]string, args ...string) (string, *testutil.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.LogBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- dispatchReady(ctx, args, envOf(env), io.Discard, logs, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve ended with %v", err)
			}
		})
		return "http://" + addr, logs
	case err := <-done:
		cancel()
		t.Fatalf("serve did not start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start in time")
	}
	return "", nil
}

// Without a command, and with serve, p2http serves as before, flags
// included.
func TestServeIsTheDefault(t *testing.T) {
	for _, args := range [][]string{nil, {"serve"}, {"-jid", "push.example.com"}, {"serve", "-jid", "push.example.com"}} {
		env := map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "p2.db")}
		base, _ := serveIn(t, env, args...)
		info := getJSON(t, base+"/v1/info")
		want := "push.localhost"
		if len(args) > 0 && args[len(args)-1] == "push.example.com" {
			want = "push.example.com"
		}
		if info["jid"] != want {
			t.Fatalf("%q: jid %v", args, info["jid"])
		}
	}
	_, _, err := admRun(t, map[string]string{"P2_DATABASE_URL": "sqlite:x.db"}, "serve", "stray")
	if err == nil || !strings.Contains(err.Error(), "unexpected argument") {
		t.Fatalf("serve with a stray argument: %v", err)
	}
}

// P2_RETENTION purges once the service is up and again every
// retentionEvery.
func TestRetention(t *testing.T) {
	retentionEvery = 300 * time.Millisecond
	t.Cleanup(func() { retentionEvery = 24 * time.Hour })
	path := filepath.Join(t.TempDir(), "p2.db")
	url := "sqlite:" + path
	now := time.Now()
	day := 24 * time.Hour
	fresh := phoneAt("fresh", "example.org", p2http.FCM, now.Add(-day), nil)
	stale := phoneAt("stale", "example.org", p2http.FCM, now.Add(-31*day), nil)
	seed(t, url, fresh, stale)
	env := map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": url, "P2_RETENTION": "30d"}
	base, logs := serveIn(t, env)

	ctx := admCtx(t)
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Counted, not looked up: this pool's cache would keep a registration
	// another pool deleted for its time to live.
	total := func() int64 {
		st, err := d.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Total
	}
	testutil.Eventually(t, 20*time.Second, "the first purge", func() bool { return total() == 1 })
	if _, err := d.Lookup(ctx, fresh.Node); err != nil {
		t.Fatalf("retention purged an active registration: %v", err)
	}
	testutil.Eventually(t, 20*time.Second, "the purge log line", func() bool {
		return strings.Contains(logs.String(), `msg="retention: purged registrations not seen for 30d" deleted=1`)
	})
	// A registration that turns stale later goes at the next round.
	later := phoneAt("later", "example.org", p2http.APNs, now.Add(-40*day), nil)
	if _, err := d.Import(ctx, []p2http.Registration{later}, false); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the next purge", func() bool { return total() == 1 })
	// The service kept serving meanwhile.
	getJSON(t, base+"/healthz")

	for _, bad := range []string{"12h", "soon"} {
		env := map[string]string{"P2_DATABASE_URL": url, "P2_RETENTION": bad}
		if _, _, err := admRun(t, env); err == nil || !strings.Contains(err.Error(), "P2_RETENTION") {
			t.Errorf("P2_RETENTION=%s: %v", bad, err)
		}
	}
}
