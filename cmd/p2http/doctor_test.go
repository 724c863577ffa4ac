package main

import (
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
)

// p2http doctor, the built binary against the fake FCM and APNs (trusted
// through SSL_CERT_FILE, which a process reads once): 0 on a good
// configuration, whose dry run reaches FCM with validate_only; 1, with a
// line saying what to fix, on credentials the token endpoint refuses and on
// a token FCM does not know.
func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	f, a := fake.NewFCM(), fake.NewAPNs()
	defer f.Close()
	defer a.Close()
	const token = "cDoctorToken-0123456789:APA91b-a-phone's-registration-token"
	f.Known(token)
	a.Known("aaaa")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Server.Certificate().Raw})
	ca = append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Server.Certificate().Raw})...)
	env := map[string]string{
		"SSL_CERT_FILE":   writeFile(t, dir, "ca.pem", string(ca)),
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"), "P2_SECRET_KEY": strings.Repeat("k", 40),
		"P2_FCM_CREDENTIALS": writeFile(t, dir, "firebase.json", string(f.Credentials)), "P2_FCM_ENDPOINT": f.Endpoint(),
		"P2_APNS_KEY": writeFile(t, dir, "key.p8", string(a.SigningKey)), "P2_APNS_KEY_ID": a.KeyID, "P2_APNS_TEAM_ID": a.TeamID,
		"P2_APNS_TOPIC": a.Topic, "P2_APNS_ENDPOINT": a.Endpoint(),
	}
	admMust(t, env, "migrate")
	bin := buildP2HTTP(t)
	doctor := func(env map[string]string, args ...string) (string, int) {
		t.Helper()
		out, errOut, code := testutil.Run(t, bin, "", env, append([]string{"doctor"}, args...)...)
		if strings.Contains(out+errOut, token[:8]) {
			t.Errorf("doctor printed the token:\n%s%s", out, errOut)
		}
		return out, code
	}

	out, code := doctor(env, "--token", token)
	if code != 0 || !strings.Contains(out, "ok    fcm-dry-run [default]: ") || !strings.Contains(out, "ok    apns-auth [default]: ") ||
		!regexp.MustCompile(`\np2http doctor: \d+ ok, \d+ warn, 0 fail\n$`).MatchString(out) {
		t.Fatalf("good configuration: exit %d\n%s", code, out)
	}
	dry := f.Requests()
	if len(dry) != 1 || !dry[0].FCMRequest().ValidateOnly || dry[0].FCMMessage().Token != token || len(f.Sent()) != 0 {
		t.Fatalf("FCM received %d requests, %d for delivery; want one dry run of the token", len(dry), len(f.Sent()))
	}

	out, code = doctor(env, "--token", "cUnknownToken-0123456789:APA91b-not-known-to-the-project")
	if code != 1 || !strings.Contains(out, "fail  fcm-dry-run [default]: FCM says the token of --token is not registered (UNREGISTERED)") ||
		!strings.Contains(out, "Fix: ") {
		t.Fatalf("unknown token: exit %d\n%s", code, out)
	}

	revoked := map[string]string{}
	for k, v := range env {
		revoked[k] = v
	}
	revoked["P2_FCM_CREDENTIALS"] = writeFile(t, dir, "revoked.json", string(f.RevokedCredentials()))
	out, code = doctor(revoked)
	if code != 1 || !strings.Contains(out, "fail  fcm-auth [default]: the OAuth2 token endpoint refused the service account of P2_FCM_CREDENTIALS") {
		t.Fatalf("revoked credentials: exit %d\n%s", code, out)
	}
}

// p2http doctor in-process: an unreachable database fails with what to
// check, as text and as JSON, and the settings are serve's own.
func TestDoctorDatabaseUnreachable(t *testing.T) {
	env := map[string]string{"P2_DEV": "1", "P2_SECRET_KEY": strings.Repeat("k", 40),
		"P2_DATABASE_URL": "postgres://p2http:db-password@127.0.0.1:1/p2http?sslmode=disable"}
	out, _, err := admRun(t, env, "doctor")
	if err == nil || err.Error() != "doctor: 1 check failed" {
		t.Fatalf("doctor = %v\n%s", err, out)
	}
	if !strings.Contains(out, "fail  database: cannot reach PostgreSQL at 127.0.0.1:1/p2http") || !strings.Contains(out, "PostgreSQL runs") ||
		strings.Contains(out, "db-password") {
		t.Fatalf("doctor:\n%s", out)
	}
	out, _, err = admRun(t, env, "doctor", "--json")
	var r struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Check, Status, Message, Fix string
		} `json:"checks"`
	}
	if err == nil || json.Unmarshal([]byte(out), &r) != nil || r.OK || r.Checks[1].Check != "database" || r.Checks[1].Status != "fail" || r.Checks[1].Fix == "" {
		t.Fatalf("doctor --json = %v\n%s", err, out)
	}

	// The settings serve refuses fail config; --database-url overrides
	// P2_DATABASE_URL as for the other commands.
	env["P2_LISTEN"] = "nonsense"
	out, _, err = admRun(t, env, "doctor", "--database-url", "sqlite:"+filepath.Join(t.TempDir(), "p2.db"))
	if err == nil || !strings.Contains(out, "fail  config: the service would refuse to start: configuration: P2_LISTEN") ||
		!strings.Contains(out, "warn  database: the SQLite file") {
		t.Fatalf("doctor with a bad P2_LISTEN = %v\n%s", err, out)
	}
	if _, _, err := admRun(t, env, "doctor", "--token", "t", "--node", "n"); err == nil {
		t.Fatal("doctor took --token and --node")
	}
}
