package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/internal/xmppserver"
)

func TestDoctorProsody(t *testing.T)  { testDoctor(t, xmppserver.Prosody) }
func TestDoctorEjabberd(t *testing.T) { testDoctor(t, xmppserver.Ejabberd) }

// runDoctor runs `p2xmpp doctor` with p2xmpp's environment changed by
// env, and returns its exit code, stdout and stderr.
func (s *stack) runDoctor(env map[string]string, args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	xenv := map[string]string{
		"P2XMPP_JID": pushJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": s.srv.ComponentAddr, "P2XMPP_API": s.api,
	}
	maps.Copy(xenv, env)
	stdout, stderr, code = testutil.Run(s.t, bins.p2xmpp, "", xenv, append([]string{"doctor"}, args...)...)
	return code, stdout, stderr
}

// testDoctor runs `p2xmpp doctor` next to a running p2xmpp, as an
// administrator would: it passes, the running p2xmpp keeps (or takes back)
// the component, and a wrong secret fails naming the secret.
func testDoctor(t *testing.T, kind xmppserver.Kind) {
	s := newStack(t, kind)
	ctx := context.Background()

	code, out, errOut := s.runDoctor(nil, "--json", "--account", "alice@example.org")
	var r checkup.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.ID)
		// On Prosody the running p2xmpp takes the component back 100 ms
		// after the doctor took it: a check through the server still
		// running then is unfinished, a warning.
		unfinished := c.Status == checkup.Warn && strings.HasPrefix(c.Message, "not finished") && kind == xmppserver.Prosody &&
			(c.ID == "disco" || c.ID == "account-route")
		if c.Status != checkup.OK && !unfinished {
			t.Errorf("%s: %s %s (fix: %s)", c.ID, c.Status, c.Message, c.Fix)
		}
	}
	if code != 0 || !r.OK || r.Counts.OK+r.Counts.Warn != 6 || strings.Join(names, " ") != "config handshake disco account-route p2http api-token" {
		t.Fatalf("doctor exited %d, ok %v, checks %v:\n%s\n%s", code, r.OK, names, out, errOut)
	}
	if strings.Contains(out+errOut, "alice") || strings.Contains(out+errOut, compSecret) {
		t.Fatalf("the doctor's output names the account or the secret:\n%s\n%s", out, errOut)
	}

	// The running p2xmpp holds the component again (Prosody's kick_old
	// let the doctor replace it for a moment): a registration gets through.
	if kind == xmppserver.Prosody {
		s.p2xmpp.waitLog("connected to the XMPP server", 2, 10*time.Second)
	}
	phone := s.srv.Dial(ctx, t, "alice", "alice-pw")
	reg := s.registerPush(ctx, phone, "token-after-doctor", "android-id-1")

	code, out, errOut = s.runDoctor(map[string]string{"P2XMPP_SECRET": "not-the-component-secret"})
	if code != 1 || !strings.Contains(out, "fail  handshake: ") || !strings.Contains(out, "P2XMPP_SECRET") ||
		!strings.Contains(out, "refused the component secret") || !strings.HasSuffix(out, "\np2xmpp doctor: 3 ok, 1 warn, 1 fail\n") ||
		!strings.Contains(errOut, "p2xmpp: doctor: 1 check failed") {
		t.Fatalf("doctor with a wrong secret exited %d:\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "not-the-component-secret") {
		t.Fatalf("the doctor's output holds the secret:\n%s", out)
	}

	// What became of the phone's pushes, as `p2http doctor --node` reads
	// them from the running p2http's database: none yet, then the push a
	// message to the sleeping phone made, delivered (the running p2http
	// writes a node's first push within a second).
	if c := s.pushHistory(reg); c.Status != checkup.OK || !strings.HasPrefix(c.Message, "never pushed") {
		t.Fatalf("push-history before any push: %+v", c)
	}
	s.enablePush(ctx, phone, reg)
	phone.Close(t)
	s.message(ctx, "wake up")
	s.waitFCM(1, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for c := s.pushHistory(reg); !strings.HasPrefix(c.Message, "1 push since it first registered") ||
		!strings.Contains(c.Message, "was delivered: FCM accepted it") || c.Status != checkup.OK; c = s.pushHistory(reg) {
		if time.Now().After(deadline) {
			t.Fatalf("push-history after a delivered push: %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pushHistory runs `p2http doctor --node --json` with the running p2http's
// environment and returns its push-history check; the doctor must pass,
// printing neither the token, the node nor the secret.
func (s *stack) pushHistory(reg registration) checkup.Check {
	s.t.Helper()
	cmd := exec.Command(bins.p2http, "doctor", "--node", reg.node, "--json")
	cmd.Env = s.p2http.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("p2http doctor --node: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if all := out.String() + errOut.String(); strings.Contains(all, "token-after-doctor") || strings.Contains(all, reg.node) ||
		strings.Contains(all, reg.secret) {
		s.t.Fatalf("p2http doctor printed the token, the node or the secret:\n%s", all)
	}
	var r checkup.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		s.t.Fatalf("p2http doctor --json: %v\n%s", err, out.String())
	}
	for _, c := range r.Checks {
		if c.ID == "push-history" && c.App == "default" {
			return c
		}
	}
	s.t.Fatalf("no push-history check:\n%s", out.String())
	return checkup.Check{}
}
