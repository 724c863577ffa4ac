package doctor_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/doctor"
	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/migrations"
)

// phoneToken is the FCM token the fake knows; no output may hold any of it.
const phoneToken = "cPhoneToken0123456789:APA91bFAKE-registration-token-of-a-phone"

// setup is a configuration the fakes and a SQLite file stand behind.
type setup struct {
	t    *testing.T
	dir  string
	fcm  *fake.FCM
	apns *fake.APNs
	cfg  doctor.Config
}

// newSetup returns a good configuration: the default app with FCM and APNs
// credentials of the fakes, a SQLite database the service has started on
// (migrated, its key pinned), on loopback.
func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{t: t, dir: t.TempDir(), fcm: fake.NewFCM(), apns: fake.NewAPNs()}
	t.Cleanup(s.fcm.Close)
	t.Cleanup(s.apns.Close)
	s.fcm.Known(phoneToken)
	s.apns.Known("aaaa")
	pool := x509.NewCertPool()
	pool.AddCert(s.fcm.Server.Certificate())
	pool.AddCert(s.apns.Server.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}

	dbURL := "sqlite:" + filepath.Join(s.dir, "p2.db")
	key := strings.Repeat("k", 40)
	pin(t, dbURL, key)
	s.cfg = doctor.Config{
		Parsed: true, Mode: "stored", DatabaseURL: dbURL, SecretKey: key,
		Default: apps.Config{
			FCM: apps.FCM{Credentials: s.write("firebase.json", s.fcm.Credentials), Endpoint: s.fcm.Endpoint()},
			APNs: apps.APNs{Key: s.write("key.p8", s.apns.SigningKey), KeyID: s.apns.KeyID, TeamID: s.apns.TeamID,
				Topic: s.apns.Topic, Endpoint: s.apns.Endpoint()},
		},
		DefaultName: envName,
		Listen:      "127.0.0.1:8080", AllowedHosts: []string{"localhost", "127.0.0.1", "::1"},
		HTTPClient: client,
	}
	return s
}

// envName names the default app's fields as the service does.
func envName(field string) string {
	return "P2_" + strings.ToUpper(strings.NewReplacer(".", "_", "credentials", "CREDENTIALS").Replace(field))
}

// pin opens (and migrates) the database as the service does at its first
// start, and pins key's fingerprint into it.
func pin(t *testing.T, dbURL, key string) {
	t.Helper()
	store, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, _, err := keyring.Load(context.Background(), key, "", store); err != nil {
		t.Fatal(err)
	}
}

func (s *setup) write(name string, data []byte) string {
	s.t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// result is one run of the doctor.
type result struct {
	err    error
	out    string
	report checkup.Report
}

// run runs the doctor as `p2http doctor` does, and again with --json.
func (s *setup) run(o doctor.Options) result {
	s.t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	var text, js bytes.Buffer
	err := doctor.Run(context.Background(), s.cfg, o, &text)
	o.JSON = true
	jsErr := doctor.Run(context.Background(), s.cfg, o, &js)
	if (err == nil) != (jsErr == nil) {
		s.t.Fatalf("text run: %v, JSON run: %v", err, jsErr)
	}
	if strings.Contains(text.String()+js.String(), phoneToken[:8]) {
		s.t.Errorf("the output holds the token:\n%s\n%s", text.String(), js.String())
	}
	var r checkup.Report
	d := json.NewDecoder(&js)
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		s.t.Fatalf("--json: %v", err)
	}
	if testing.Verbose() {
		s.t.Log("\n" + text.String())
	}
	if lines := strings.Count(text.String(), "\n"); lines != len(r.Checks)+1 {
		s.t.Errorf("%d lines of text for %d checks:\n%s", lines, len(r.Checks), text.String())
	}
	// The last line counts the checks, as the JSON does, naming the command.
	counts := fmt.Sprintf("\np2http doctor: %d ok, %d warn, %d fail\n", r.Counts.OK, r.Counts.Warn, r.Counts.Fail)
	if r.Counts.OK+r.Counts.Warn+r.Counts.Fail != len(r.Checks) || !strings.HasSuffix(text.String(), counts) {
		s.t.Errorf("counts %+v for %d checks:\n%s", r.Counts, len(r.Checks), text.String())
	}
	return result{err: err, out: text.String(), report: r}
}

// check returns the line of check id (of app, when not empty).
func (r result) check(t *testing.T, id, app string) checkup.Check {
	t.Helper()
	for _, c := range r.report.Checks {
		if c.ID == id && c.App == app {
			return c
		}
	}
	t.Fatalf("no check %s [%s] in\n%s", id, app, r.out)
	return checkup.Check{}
}

// want asserts a check's status and that its message holds each of words.
func (r result) want(t *testing.T, id, app string, status checkup.Status, words ...string) checkup.Check {
	t.Helper()
	c := r.check(t, id, app)
	if c.Status != status {
		t.Errorf("%s [%s] is %s, want %s: %s (fix: %s)", id, app, c.Status, status, c.Message, c.Fix)
	}
	for _, w := range words {
		if !strings.Contains(c.Message+" "+c.Fix, w) {
			t.Errorf("%s [%s] does not say %q: %s (fix: %s)", id, app, w, c.Message, c.Fix)
		}
	}
	return c
}

// failed asserts that the run failed, for the checks named.
func (r result) failed(t *testing.T, ids ...string) {
	t.Helper()
	var fe *checkup.FailedError
	if !errors.As(r.err, &fe) || fe.Failed != len(ids) {
		t.Errorf("Run = %v, want %d failed checks\n%s", r.err, len(ids), r.out)
	}
	for _, id := range ids {
		found := false
		for _, c := range r.report.Checks {
			if c.ID == id && c.Status == checkup.Fail {
				found = true
			}
		}
		if !found {
			t.Errorf("%s did not fail\n%s", id, r.out)
		}
	}
}

// A good configuration passes every check, and the dry run of --token
// reaches FCM with validate_only set: nothing is sent for delivery.
func TestGoodConfiguration(t *testing.T) {
	s := newSetup(t)
	r := s.run(doctor.Options{Token: phoneToken})
	if r.err != nil || !r.report.OK {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	for _, c := range r.report.Checks {
		if c.Status != checkup.OK {
			t.Errorf("%s [%s] is %s: %s", c.ID, c.App, c.Status, c.Message)
		}
	}
	r.want(t, "config", "", checkup.OK)
	r.want(t, "database", "", checkup.OK, "p2.db")
	r.want(t, "migrations", "", checkup.OK)
	r.want(t, "server-key", "", checkup.OK, "P2_SECRET_KEY is the key this database was first used with")
	r.want(t, "fcm-auth", "default", checkup.OK, "P2_FCM_CREDENTIALS", "p2http-test")
	r.want(t, "fcm-dry-run", "default", checkup.OK, "the token of --token", "validate_only")
	r.want(t, "apns-auth", "default", checkup.OK, "BadDeviceToken", s.apns.Topic)
	r.want(t, "apns-environment", "default", checkup.OK, "production")
	if !strings.Contains(r.out, "ok    fcm-dry-run [default]: ") || !strings.Contains(r.out, "\np2http doctor: ") {
		t.Errorf("text output:\n%s", r.out)
	}

	// Both runs (text and JSON) dry-ran the phone's token; nothing was
	// sent to be delivered.
	dry := s.fcm.DryRuns()
	if len(dry) != 2 || dry[0].Token != phoneToken || dry[0].Data.Account == "" {
		t.Errorf("dry runs %+v, want two of the phone's token", dry)
	}
	if sent := s.fcm.Sent(); len(sent) != 0 {
		t.Errorf("sent for delivery: %+v", sent)
	}
	for _, req := range s.fcm.Requests() {
		if !req.FCMRequest().ValidateOnly {
			t.Errorf("a request without validate_only: %s", req.Body)
		}
	}
	// The APNs probe went to a device token that cannot exist.
	for _, tok := range s.apns.DeviceTokens() {
		if strings.Trim(tok, "0") != "" {
			t.Errorf("APNs probe to %q", tok)
		}
	}

	// Without a token, the dry run goes to a made-up one, which FCM refuses
	// for the token alone: the project accepts our messages.
	r = s.run(doctor.Options{})
	if r.err != nil {
		t.Fatalf("Run without a token = %v\n%s", r.err, r.out)
	}
	r.want(t, "fcm-dry-run", "default", checkup.OK, "made-up token", "UNREGISTERED")
}

// Credentials the token endpoint refuses fail fcm-auth, naming the
// setting and what to do; the dry run is not tried.
func TestWrongFCMCredentials(t *testing.T) {
	s := newSetup(t)
	s.cfg.Default.FCM.Credentials = s.write("revoked.json", s.fcm.RevokedCredentials())
	r := s.run(doctor.Options{Token: phoneToken})
	r.failed(t, "fcm-auth")
	c := r.want(t, "fcm-auth", "default", checkup.Fail, "refused the service account of P2_FCM_CREDENTIALS", "new key")
	if c.Fix == "" || !strings.Contains(r.out, "Fix: ") {
		t.Errorf("no fix:\n%s", r.out)
	}
	r.want(t, "fcm-dry-run", "default", checkup.Warn, "not checked")
	if n := s.fcm.Messages(); n != 0 {
		t.Errorf("%d messages reached FCM without an access token", n)
	}

	// A file that is no service-account key fails before any request.
	s.cfg.Default.FCM.Credentials = s.write("nonsense.json", []byte(`{"type":"authorized_user"}`))
	r = s.run(doctor.Options{})
	r.failed(t, "fcm-auth")
	r.want(t, "fcm-auth", "default", checkup.Fail, "P2_FCM_CREDENTIALS", "Generate new private key")
}

// A token FCM does not know (UNREGISTERED) fails the dry run and says that
// the phone must register again.
func TestUnknownToken(t *testing.T) {
	s := newSetup(t)
	r := s.run(doctor.Options{Token: "cOtherToken0123456789:APA91bNOT-known-to-the-project"})
	r.failed(t, "fcm-dry-run")
	r.want(t, "fcm-dry-run", "default", checkup.Fail, "UNREGISTERED", "the token of --token", "register again")
	r.want(t, "fcm-auth", "default", checkup.OK)
	if len(s.fcm.Sent()) != 0 || len(s.fcm.DryRuns()) != 2 {
		t.Errorf("sent %d, dry runs %d", len(s.fcm.Sent()), len(s.fcm.DryRuns()))
	}
	// --token for an app that is not configured is not checked.
	r = s.run(doctor.Options{Token: phoneToken, App: "quicksy"})
	r.failed(t, "fcm-dry-run")
	r.want(t, "fcm-dry-run", "quicksy", checkup.Fail, "--app")
}

// A database that cannot be reached fails, saying what to check; the
// checks that need it are left out, the others still run.
func TestUnreachableDatabase(t *testing.T) {
	s := newSetup(t)
	s.cfg.DatabaseURL = "postgres://p2http:secret-password@127.0.0.1:1/p2http?sslmode=disable"
	r := s.run(doctor.Options{Node: "some-node"})
	r.failed(t, "database", "registration")
	r.want(t, "database", "", checkup.Fail, "PostgreSQL at 127.0.0.1:1/p2http", "PostgreSQL runs", "P2_DATABASE_URL")
	if strings.Contains(r.out, "secret-password") {
		t.Errorf("the output holds the database password:\n%s", r.out)
	}
	for _, c := range r.report.Checks {
		if c.ID == "migrations" || c.ID == "server-key" {
			t.Errorf("%s checked without a database", c.ID)
		}
	}
	r.want(t, "fcm-auth", "default", checkup.OK)
}

// A malformed PostgreSQL URL fails as such, without the password that the
// URL parser's own error would quote.
func TestMalformedDatabaseURL(t *testing.T) {
	s := newSetup(t)
	for _, u := range []string{
		"postgres://p2http:secret-password@127.0.0.1:badport/p2http",
		"postgres://p2http:secret-password%zz@127.0.0.1/p2http",
	} {
		s.cfg.DatabaseURL = u
		r := s.run(doctor.Options{})
		r.failed(t, "database")
		r.want(t, "database", "", checkup.Fail, "P2_DATABASE_URL is not a valid database URL", "percent-encoded")
		if strings.Contains(r.out, "secret-password") {
			t.Errorf("%s: the output holds the database password:\n%s", u, r.out)
		}
	}
}

// The key a database was first used with is the only one it takes; a
// missing key file beside it is refused too.
func TestServerKey(t *testing.T) {
	s := newSetup(t)
	s.cfg.SecretKey = strings.Repeat("x", 40)
	r := s.run(doctor.Options{})
	r.failed(t, "server-key")
	r.want(t, "server-key", "", checkup.Fail, "differs from the key this database was first used with", "backup")

	s.cfg.SecretKey = ""
	r = s.run(doctor.Options{})
	r.failed(t, "server-key")
	r.want(t, "server-key", "", checkup.Fail, "p2.db.key is missing", "restore the key file")

	// A fresh SQLite file: the service creates it and its key.
	s.cfg.DatabaseURL = "sqlite:" + filepath.Join(s.dir, "new.db")
	r = s.run(doctor.Options{})
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "database", "", checkup.Warn, "does not exist yet")
	r.want(t, "server-key", "", checkup.Warn, "new.db.key does not exist yet")
	if _, err := os.Stat(filepath.Join(s.dir, "new.db")); !os.IsNotExist(err) {
		t.Errorf("the doctor created the database: %v", err)
	}
}

// A schema newer than this p2http's, or left dirty, fails; an older one
// is migrated at start.
func TestMigrations(t *testing.T) {
	s := newSetup(t)
	path := strings.TrimPrefix(s.cfg.DatabaseURL, "sqlite:")
	set := func(version int, dirty bool) {
		x, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if _, err := x.Exec(`UPDATE schema_migrations SET version = ?, dirty = ?`, version, dirty); err != nil {
			t.Fatal(err)
		}
	}
	latest := int(migrations.Latest())
	set(latest+1, false)
	r := s.run(doctor.Options{})
	r.failed(t, "migrations")
	r.want(t, "migrations", "", checkup.Fail, "newer than this p2http knows")
	set(latest, true)
	r = s.run(doctor.Options{})
	r.failed(t, "migrations")
	r.want(t, "migrations", "", checkup.Fail, "dirty", "migrate force")
	set(latest-1, false)
	r = s.run(doctor.Options{})
	r.want(t, "migrations", "", checkup.Warn, "p2http migrate")
}

// --node checks the registration's own token: found, its token dry-run; not
// found, a failure that says what happened.
func TestNode(t *testing.T) {
	s := newSetup(t)
	store, err := db.Open(context.Background(), s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	reg := p2http.Registration{Service: p2http.FCM, Device: strings.Repeat("ab", 20), Domain: "example.org",
		Token: phoneToken, Node: "node-of-alice"}
	if _, _, err := store.Register(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	store.Close()
	r := s.run(doctor.Options{Node: "node-of-alice"})
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "registration", "default", checkup.OK, "an FCM registration of the domain example.org", "registered ")
	r.want(t, "push-history", "default", checkup.OK, "never pushed")
	r.want(t, "fcm-dry-run", "default", checkup.OK, "the registration's token")
	if dry := s.fcm.DryRuns(); len(dry) != 2 || dry[0].Token != phoneToken || dry[0].Data.Account != reg.Device {
		t.Errorf("dry runs %+v", dry)
	}

	r = s.run(doctor.Options{Node: "no-such-node"})
	r.failed(t, "registration")
	r.want(t, "registration", "", checkup.Fail, "no registration holds this node", "register again")

	// A schema one migration behind (the service not restarted since the
	// upgrade) lacks columns this p2http reads: the node is not looked up,
	// and a warning says to migrate.
	downs, err := fs.Glob(migrations.FS, fmt.Sprintf("sqlite/%06d_*.down.sql", migrations.Latest()))
	if err != nil || len(downs) != 1 {
		t.Fatalf("the newest migration's down file: %v, %v", downs, err)
	}
	down, err := migrations.FS.ReadFile(downs[0])
	if err != nil {
		t.Fatal(err)
	}
	x, err := sql.Open("sqlite", strings.TrimPrefix(s.cfg.DatabaseURL, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := x.Exec(string(down)); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Exec(`UPDATE schema_migrations SET version = ?`, migrations.Latest()-1); err != nil {
		t.Fatal(err)
	}
	r = s.run(doctor.Options{Node: "node-of-alice"})
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "registration", "", checkup.Warn, "not looked up", "p2http migrate")
}

// APNs: a key, key id or team Apple does not take fails apns-auth naming
// the settings; a topic it refuses fails naming the topic.
func TestAPNsCredentials(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	for _, c := range []struct {
		name  string
		edit  func(s *setup, n *apps.APNs)
		words []string
	}{
		{"another key", func(s *setup, n *apps.APNs) {
			n.Key = s.write("other.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}, []string{"InvalidProviderToken", "P2_APNS_KEY", "P2_APNS_TEAM_ID"}},
		{"another team", func(s *setup, n *apps.APNs) { n.TeamID = "ZZZ999ZZZZ" }, []string{"InvalidProviderToken", "team ZZZ999ZZZZ", "P2_APNS_TEAM_ID"}},
		{"another key id", func(s *setup, n *apps.APNs) { n.KeyID = "ZZZ999ZZZZ" }, []string{"InvalidProviderToken", "P2_APNS_KEY_ID"}},
		{"another topic", func(s *setup, n *apps.APNs) { n.Topic = "org.example.other" }, []string{"org.example.other", "P2_APNS_TOPIC"}},
		{"not a key", func(s *setup, n *apps.APNs) { n.Key = s.write("bad.p8", []byte("nonsense")) }, []string{"P2_APNS_KEY", "not PEM"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSetup(t)
			c.edit(s, &s.cfg.Default.APNs)
			r := s.run(doctor.Options{})
			r.failed(t, "apns-auth")
			r.want(t, "apns-auth", "default", checkup.Fail, c.words...)
		})
	}
}

// The report's JSON: ok, counts by status, and each check with its id,
// status, message and, for warn and fail, what to do.
func TestJSONShape(t *testing.T) {
	s := newSetup(t)
	s.cfg.DatabaseURL = "postgres://127.0.0.1:1/p2http?sslmode=disable"
	var out bytes.Buffer
	err := doctor.Run(context.Background(), s.cfg, doctor.Options{JSON: true, Timeout: 10 * time.Second}, &out)
	if err == nil {
		t.Fatal("Run succeeded with an unreachable database")
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if v["ok"] != false || len(v) != 3 {
		t.Errorf("top level %v", v)
	}
	counts, _ := v["counts"].(map[string]any)
	checks, _ := v["checks"].([]any)
	total := 0
	for _, k := range []string{"ok", "warn", "fail"} {
		n, ok := counts[k].(float64)
		if !ok {
			t.Errorf("counts has no %s: %v", k, counts)
		}
		total += int(n)
	}
	if len(checks) == 0 || total != len(checks) || counts["fail"] != 1.0 {
		t.Errorf("counts %v for %d checks", counts, len(checks))
	}
	for _, c := range checks {
		m := c.(map[string]any)
		st, _ := m["status"].(string)
		if m["check"] == "" || m["message"] == "" || (st != "ok" && st != "warn" && st != "fail") {
			t.Errorf("check %v", m)
		}
		if _, fix := m["fix"]; fix != (st != "ok") {
			t.Errorf("check %v: a fix goes with warn and fail only", m)
		}
		for k := range m {
			if k != "check" && k != "app" && k != "status" && k != "message" && k != "fix" {
				t.Errorf("check %v: unknown field %s", m, k)
			}
		}
		if m["check"] == "fcm-auth" && m["app"] != "default" {
			t.Errorf("fcm-auth without its app: %v", m)
		}
	}
}

// Settings the service refuses fail config; settings it cannot even parse
// are all that is reported.
func TestConfig(t *testing.T) {
	s := newSetup(t)
	s.cfg.Err = &envflag.Error{Var: "P2_LISTEN", Msg: `"x" is not host:port`}
	s.cfg.Parsed = false
	r := s.run(doctor.Options{})
	r.failed(t, "config")
	if len(r.report.Checks) != 1 {
		t.Errorf("%d checks on settings that do not parse", len(r.report.Checks))
	}
	s.cfg.Parsed = true
	r = s.run(doctor.Options{})
	r.failed(t, "config")
	r.want(t, "config", "", checkup.Fail, "would refuse to start", "correct P2_LISTEN")
	r.want(t, "fcm-auth", "default", checkup.OK)
}

// Options that contradict each other are refused before anything runs.
func TestOptionsValidate(t *testing.T) {
	for _, o := range []doctor.Options{
		{Token: "t", Node: "n", Timeout: time.Second},
		{App: "quicksy", Timeout: time.Second},
		{Token: "t", App: "Not An App", Timeout: time.Second},
		{Timeout: 0},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := (&doctor.Options{Token: "t", App: "quicksy", Timeout: time.Second}).Validate(); err != nil {
		t.Error(err)
	}
}
