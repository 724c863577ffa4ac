package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

const (
	pushJID    = "push.example.org"
	compSecret = "component-secret-e2e"
)

// binaries built once for the package by TestMain.
var bins struct{ p2http, p2xmpp string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2http-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.p2http, bins.p2xmpp = filepath.Join(dir, "p2http"), filepath.Join(dir, "p2xmpp")
	for _, b := range []struct{ out, pkg string }{{bins.p2http, "../cmd/p2http"}, {bins.p2xmpp, "../cmd/p2xmpp"}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one of our binaries running as a child process.
type proc struct {
	t    *testing.T
	name string
	bin  string
	env  []string
	mu   sync.Mutex
	logs bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name, bin string, env map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, env: []string{"PATH=" + os.Getenv("PATH")}}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, p.Logs())
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	out, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(append(sc.Bytes(), '\n'))
			p.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(done)
	}(p.done)
}

// stop sends SIGTERM and waits for the process to end.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.cmd = nil
}

// Logs returns everything the process wrote so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitLog waits until the log holds substr n times.
func (p *proc) waitLog(substr string, n int, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for strings.Count(p.Logs(), substr) < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not log %q %d times within %v:\n%s", p.name, substr, n, d, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stack is one XMPP server with p2xmpp attached to it, p2http behind p2xmpp,
// and a fake FCM behind p2http.
type stack struct {
	t      *testing.T
	cfg    stackConfig
	srv    *xmppserver.Server
	fcm    *fake.FCM
	appFCM map[string]*fake.FCM // the fake FCM project of each further app
	p2http *proc
	p2xmpp *proc
	api    string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stackConfig varies a stack.
type stackConfig struct {
	// apps are further apps p2http serves (P2_CONFIG), each with FCM in its
	// own fake project.
	apps []string
	// stateless runs p2http with P2_MODE=stateless: no database.
	stateless bool
	// modPush are options of ejabberd's mod_push (xmppserver.Options.ModPush);
	// with them ejabberd logs at debug level.
	modPush map[string]string
	// extraDomains are further virtual hosts of the XMPP server
	// (xmppserver.Options.ExtraDomains), publishing to the same p2xmpp.
	extraDomains []string
	// pushMaxErrors is Prosody's push_max_errors; 0 means 1, so that the
	// first permanent error drops a registration.
	pushMaxErrors int
	// p2httpEnv and p2xmppEnv add to the binaries' environments.
	p2httpEnv, p2xmppEnv map[string]string
}

func newStack(t *testing.T, kind xmppserver.Kind) *stack { return newStackWith(t, kind, stackConfig{}) }

func newStackWith(t *testing.T, kind xmppserver.Kind, cfg stackConfig) *stack {
	t.Helper()
	opts := xmppserver.Options{Domain: "example.org", Component: pushJID, ComponentSecret: compSecret, PushMaxErrors: 1,
		ModPush: cfg.modPush, Debug: cfg.modPush != nil, ExtraDomains: cfg.extraDomains}
	if cfg.pushMaxErrors > 0 {
		opts.PushMaxErrors = cfg.pushMaxErrors
	}
	s := &stack{t: t, cfg: cfg, fcm: fake.NewFCM(), appFCM: map[string]*fake.FCM{}}
	t.Cleanup(s.fcm.Close)
	if kind == xmppserver.Prosody {
		s.srv = xmppserver.StartProsody(t, opts)
	} else {
		s.srv = xmppserver.StartEjabberd(t, opts)
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "fcm-ca.pem")
	creds := filepath.Join(dir, "fcm.json")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.fcm.Server.Certificate().Raw}), 0o600)
	os.WriteFile(creds, s.fcm.Credentials, 0o600)
	port := freePort(t)
	s.api = fmt.Sprintf("http://127.0.0.1:%d", port)
	env := map[string]string{
		"P2_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"),
		"P2_JID": pushJID, "P2_FCM_CREDENTIALS": creds, "P2_FCM_ENDPOINT": s.fcm.Endpoint(), "SSL_CERT_FILE": ca,
		"P2_LOG_FORMAT": "json", "P2_COALESCE_WINDOW": "0",
		"P2_LOG_LEVEL": "debug", // pushRequests counts the request lines
	}
	if len(cfg.apps) > 0 {
		env["P2_CONFIG"] = s.startApps(dir, cfg.apps)
	}
	if cfg.stateless {
		delete(env, "P2_DATABASE_URL")
		env["P2_MODE"] = "stateless"
		env["P2_SECRET_KEY"] = "e2e-stateless-server-key-0123456789abcdef"
	}
	maps.Copy(env, cfg.p2httpEnv)
	s.p2http = startProc(t, "p2http", bins.p2http, env)
	s.waitHTTP()
	xenv := map[string]string{
		"P2XMPP_JID": pushJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": s.srv.ComponentAddr, "P2XMPP_API": s.api,
		"P2XMPP_LOG_LEVEL": "debug", // the leak checks read every IQ's line
	}
	maps.Copy(xenv, cfg.p2xmppEnv)
	s.p2xmpp = startProc(t, "p2xmpp", bins.p2xmpp, xenv)
	s.p2xmpp.waitLog("connected to the XMPP server", 1, 30*time.Second)
	s.srv.Register(t, "alice", "alice-pw")
	s.srv.Register(t, "bob", "bob-pw")
	return s
}

// startApps starts a fake FCM project for each app (into s.appFCM) and
// writes the P2_CONFIG file declaring them into dir; it returns its path.
// httptest serves every fake with the same certificate, so the CA file of
// the default project trusts them all.
func (s *stack) startApps(dir string, apps []string) string {
	s.t.Helper()
	var file strings.Builder
	file.WriteString("apps:\n")
	for _, app := range apps {
		f := fake.NewFCMProject("p2http-" + app)
		s.t.Cleanup(f.Close)
		s.appFCM[app] = f
		path := filepath.Join(dir, app+"-fcm.json")
		os.WriteFile(path, f.Credentials, 0o600)
		fmt.Fprintf(&file, "  %s:\n    fcm:\n      credentials: %s\n      endpoint: %s\n", app, path, f.Endpoint())
	}
	path := filepath.Join(dir, "p2http.yaml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// waitHTTP waits until p2http answers /readyz.
func (s *stack) waitHTTP() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(s.api + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("p2http not ready: %v\n%s", err, s.p2http.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registration is what the phone got back from register-push-fcm.
type registration struct{ jid, node, secret string }

// registerPush runs the ad-hoc command as Conversations does and returns
// the form's jid, node and secret.
func (s *stack) registerPush(ctx context.Context, phone *xmppserver.Client, token, androidID string) registration {
	s.t.Helper()
	return s.registerPushAt(ctx, phone, pushJID, token, androidID)
}

// registerPushAt registers at the address to: the component's, or an app's
// APP@component.
func (s *stack) registerPushAt(ctx context.Context, phone *xmppserver.Client, to, token, androidID string) registration {
	s.t.Helper()
	typ, reply := phone.SendIQ(ctx, `<iq type='set' to='`+to+`'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='token'><value>`+token+`</value></field>`+
		`<field var='android-id'><value>`+androidID+`</value></field></x></command></iq>`)
	if typ != "result" || !strings.Contains(reply, `status="completed"`) {
		s.t.Fatalf("register-push-fcm: %s %s", typ, reply)
	}
	r := registration{jid: fieldValue(reply, "jid"), node: fieldValue(reply, "node"), secret: fieldValue(reply, "secret")}
	nodeOK := len(r.node) == 12
	if s.cfg.stateless {
		nodeOK = len(r.node) > 12 && len(r.node) <= 1023 // a sealed registration
	}
	if r.jid != to || !nodeOK || len(r.secret) != 24 {
		s.t.Fatalf("register-push-fcm form: %+v from %s", r, reply)
	}
	return r
}

// enablePush tells the phone's own server to push to the registration.
func (s *stack) enablePush(ctx context.Context, phone *xmppserver.Client, r registration) {
	s.t.Helper()
	typ, reply := phone.SendIQ(ctx, `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='`+r.jid+`' node='`+r.node+`'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var='secret'><value>`+r.secret+`</value></field></x></enable></iq>`)
	if typ != "result" {
		s.t.Fatalf("enable: %s %s", typ, reply)
	}
}

// disablePush tells the phone's own server to stop pushing to the
// registration.
func (s *stack) disablePush(ctx context.Context, phone *xmppserver.Client, r registration) {
	s.t.Helper()
	typ, reply := phone.SendIQ(ctx, `<iq type='set'><disable xmlns='urn:xmpp:push:0' jid='`+r.jid+`' node='`+r.node+`'/></iq>`)
	if typ != "result" {
		s.t.Fatalf("disable: %s %s", typ, reply)
	}
}

// message has bob send alice a chat message while alice is offline.
func (s *stack) message(ctx context.Context, body string) {
	s.t.Helper()
	bob := s.srv.Dial(ctx, s.t, "bob", "bob-pw")
	bob.Send(ctx, s.t, `<message type='chat' to='alice@`+s.srv.Domain+`'><body>`+body+`</body></message>`)
	bob.Close(s.t)
}

// waitFCM waits until the fake FCM has received n messages and returns them.
func (s *stack) waitFCM(n int, d time.Duration) []fake.Request {
	s.t.Helper()
	return s.waitProject(s.fcm, n, d)
}

// waitProject waits until the fake FCM project f has received n messages
// and returns them.
func (s *stack) waitProject(f *fake.FCM, n int, d time.Duration) []fake.Request {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var msgs []fake.Request
		for _, r := range f.Requests() {
			if strings.HasSuffix(r.Path, "/messages:send") {
				msgs = append(msgs, r)
			}
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("fake FCM got %d messages, want %d\np2http:\n%s\np2xmpp:\n%s\nserver:\n%s", len(msgs), n,
				s.p2http.Logs(), s.p2xmpp.Logs(), tail(s.srv.Logs(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushRequests counts the /v1/push requests p2http logged.
func (s *stack) pushRequests() int {
	return strings.Count(s.p2http.Logs(), `"route":"/v1/push"`)
}

// fieldValue returns the value of a data-form field in XML text.
func fieldValue(form, name string) string {
	m := regexp.MustCompile(`var="` + regexp.QuoteMeta(name) + `"[^>]*><value[^>]*>([^<]*)</value>`).FindStringSubmatch(form)
	if m == nil {
		return ""
	}
	return m[1]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
