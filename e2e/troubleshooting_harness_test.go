package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/xmppserver"
)

// This file is the harness of TestTroubleshooting: the XMPP servers its
// cases share, and one case's p2http, p2xmpp, fakes and phone, with what
// each source showed captured by name.

// tsEnv holds the XMPP servers the cases share: one Prosody and one
// ejabberd, configured as the other end-to-end tests' but with mod_adhoc
// loaded, as both servers' default configurations load it, and with
// Prosody dropping a registration after two errors (push_max_errors).
type tsEnv struct {
	servers map[xmppserver.Kind]*xmppserver.Server
}

// tsMaxErrors is Prosody's push_max_errors in these tests.
const tsMaxErrors = 2

// newTSEnv starts a server of each kind, stopped at the end of t.
func newTSEnv(t *testing.T, kinds []xmppserver.Kind) *tsEnv {
	t.Helper()
	e := &tsEnv{servers: map[xmppserver.Kind]*xmppserver.Server{}}
	for _, kind := range kinds {
		opts := xmppserver.Options{Domain: "example.org", Component: pushJID, ComponentSecret: compSecret,
			PushMaxErrors: tsMaxErrors, ExtraModules: []string{"adhoc"}}
		if kind == xmppserver.Prosody {
			e.servers[kind] = xmppserver.StartProsody(t, opts)
		} else {
			e.servers[kind] = xmppserver.StartEjabberd(t, opts)
		}
		e.servers[kind].Register(t, "bob", "bob-pw")
	}
	return e
}

// tsCase is one case provoked on one XMPP server: the phone is the account
// named after the case, bob writes to it, and p2http and p2xmpp are
// started for the case alone, with the default log format and level, as
// an administrator runs them.
type tsCase struct {
	t    *testing.T
	name string
	srv  *xmppserver.Server
	fcm  *fake.FCM
	apns *fake.APNs
	dir  string
	ca   string // the CA file that trusts the fakes

	p2http, p2xmpp *proc
	procs          []*proc // every p2http and p2xmpp started, in order
	api            string
	p2xmppMetrics  string // the address of p2xmpp's metrics
	serverLogFrom  int    // where the server's log stood when the case began

	user     string
	account  bool // the phone's account exists
	captured map[string]*strings.Builder
	doctors  []string // what the doctors printed
	// private holds what must never reach p2http's or p2xmpp's log:
	// tokens, secrets, device ids, account JIDs.
	private []string
}

// newTSCase prepares the case name on srv: fakes of its own, nothing
// started yet.
func newTSCase(t *testing.T, name string, srv *xmppserver.Server) *tsCase {
	t.Helper()
	c := &tsCase{t: t, name: name, srv: srv, fcm: fake.NewFCM(), apns: fake.NewAPNs(), dir: t.TempDir(),
		user: name, serverLogFrom: len(srv.Logs()), captured: map[string]*strings.Builder{},
		private: []string{compSecret, "@" + srv.Domain}}
	t.Cleanup(c.fcm.Close)
	t.Cleanup(c.apns.Close)
	// httptest serves every fake with the same certificate.
	c.ca = c.file("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.fcm.Server.Certificate().Raw}))
	return c
}

// file writes a file into the case's directory and returns its path.
func (c *tsCase) file(name string, data []byte) string {
	c.t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// startP2HTTP starts p2http with FCM and APNs at the fakes, a SQLite
// database of the case's, and env over that, and waits until it is
// ready.
func (c *tsCase) startP2HTTP(env map[string]string) {
	c.t.Helper()
	port := freePort(c.t)
	c.api = fmt.Sprintf("http://127.0.0.1:%d", port)
	all := map[string]string{
		"P2_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "P2_DATABASE_URL": "sqlite:" + filepath.Join(c.dir, "p2.db"),
		"P2_JID": pushJID, "SSL_CERT_FILE": c.ca, "P2_COALESCE_WINDOW": "0",
		"P2_FCM_CREDENTIALS": c.file("fcm.json", c.fcm.Credentials), "P2_FCM_ENDPOINT": c.fcm.Endpoint(),
		"P2_APNS_KEY": c.file("apns.p8", c.apns.SigningKey), "P2_APNS_KEY_ID": c.apns.KeyID, "P2_APNS_TEAM_ID": c.apns.TeamID,
		"P2_APNS_TOPIC": c.apns.Topic, "P2_APNS_ENDPOINT": c.apns.Endpoint(),
	}
	maps.Copy(all, env)
	c.p2http = startProc(c.t, "p2http", bins.p2http, all)
	c.procs = append(c.procs, c.p2http)
	c.waitReady()
}

// restartP2HTTP stops p2http and starts it again with env changed.
func (c *tsCase) restartP2HTTP(env map[string]string) {
	c.t.Helper()
	c.p2http.stop()
	for k, v := range env {
		c.p2http.env = slices.DeleteFunc(c.p2http.env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		c.p2http.env = append(c.p2http.env, k+"="+v)
	}
	c.p2http.start()
	c.waitReady()
}

// waitReady waits until p2http answers /readyz with 200.
func (c *tsCase) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(c.api + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("p2http not ready: %v\n%s", err, c.p2http.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startP2XMPP starts p2xmpp towards the case's server and p2http, with env
// over that; it waits until p2xmpp is connected unless env changes the
// link (P2XMPP_SERVER, P2XMPP_SECRET, P2XMPP_JID).
func (c *tsCase) startP2XMPP(env map[string]string) {
	c.t.Helper()
	api := c.api
	if api == "" {
		api = fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t)) // nobody listens
	}
	c.p2xmppMetrics = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	all := map[string]string{"P2XMPP_JID": pushJID, "P2XMPP_SECRET": compSecret, "P2XMPP_SERVER": c.srv.ComponentAddr, "P2XMPP_API": api,
		"P2XMPP_METRICS": c.p2xmppMetrics}
	maps.Copy(all, env)
	c.p2xmpp = startProc(c.t, "p2xmpp", bins.p2xmpp, all)
	c.procs = append(c.procs, c.p2xmpp)
	if env["P2XMPP_SERVER"] == "" && env["P2XMPP_SECRET"] == "" && env["P2XMPP_JID"] == "" {
		c.p2xmpp.waitLog("connected to the XMPP server", 1, 30*time.Second)
	}
}

// phone logs in as the case's account, creating it the first time.
func (c *tsCase) phone(ctx context.Context) *xmppserver.Client {
	c.t.Helper()
	if !c.account {
		c.srv.Register(c.t, c.user, "phone-pw")
		c.account = true
	}
	return c.srv.Dial(ctx, c.t, c.user, "phone-pw")
}

// command sends register-push-SERVICE (fcm or apns) to the address to,
// with the phone's token and device id, as Conversations does, and returns
// the answer's type and XML.
func (c *tsCase) command(ctx context.Context, phone *xmppserver.Client, to, service string) (typ, reply string) {
	c.t.Helper()
	token, deviceID := c.token(service), "android-id-of-"+c.name
	c.private = append(c.private, token, deviceID)
	return phone.SendIQ(ctx, `<iq type='set' to='`+to+`'><command xmlns='http://jabber.org/protocol/commands' node='register-push-`+service+`' action='execute'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='token'><value>`+token+`</value></field>`+
		`<field var='android-id'><value>`+deviceID+`</value></field></x></command></iq>`)
}

// token is the push token of the case's phone with service: distinct per
// case, and for APNs 64 hex digits, as device tokens are.
func (c *tsCase) token(service string) string {
	if service == "apns" {
		sum := sha256.Sum256([]byte(c.name))
		return hex.EncodeToString(sum[:])
	}
	return "fcm-token-of-" + c.name
}

// register registers the phone with service (fcm or apns) at the
// component and enables push at its server with the answer.
func (c *tsCase) register(ctx context.Context, phone *xmppserver.Client, service string) registration {
	c.t.Helper()
	typ, reply := c.command(ctx, phone, pushJID, service)
	r := registration{jid: fieldValue(reply, "jid"), node: fieldValue(reply, "node"), secret: fieldValue(reply, "secret")}
	if typ != "result" || r.jid != pushJID || r.node == "" || r.secret == "" {
		c.t.Fatalf("register-push-%s: %s %s", service, typ, reply)
	}
	c.private = append(c.private, r.secret, r.node)
	typ, reply = phone.SendIQ(ctx, `<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='`+r.jid+`' node='`+r.node+`'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var='secret'><value>`+r.secret+`</value></field></x></enable></iq>`)
	if typ != "result" {
		c.t.Fatalf("enable: %s %s", typ, reply)
	}
	return r
}

// offline registers the phone with service, enables push and logs the
// phone out, as a phone that sleeps.
func (c *tsCase) offline(ctx context.Context, service string) registration {
	c.t.Helper()
	phone := c.phone(ctx)
	r := c.register(ctx, phone, service)
	phone.Close(c.t)
	return r
}

// message has bob write to the phone's account.
func (c *tsCase) message(ctx context.Context) {
	c.t.Helper()
	bob := c.srv.Dial(ctx, c.t, "bob", "bob-pw")
	bob.Send(ctx, c.t, `<message type='chat' to='`+c.user+`@`+c.srv.Domain+`'><body>are you there?</body></message>`)
	bob.Close(c.t)
}

// serverLog is what the XMPP server logged since the case began.
func (c *tsCase) serverLog() string {
	logs := c.srv.Logs()
	if len(logs) < c.serverLogFrom {
		return logs
	}
	return logs[c.serverLogFrom:]
}

// waitServer waits until the server logged substr n times since the case
// began.
func (c *tsCase) waitServer(substr string, n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(c.serverLog(), substr) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not log %q %d times:\n%s", c.srv, substr, n, tail(c.serverLog(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFakes waits until the fakes got n requests in all.
func (c *tsCase) waitFakes(n int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(c.fcm.Requests())+len(c.apns.Requests()) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("the fakes got %d requests, want %d\np2http:\n%s\np2xmpp:\n%s", len(c.fcm.Requests())+len(c.apns.Requests()), n,
				c.p2http.Logs(), c.p2xmpp.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// capture adds text to what source showed in this case.
func (c *tsCase) capture(source, text string) {
	b := c.captured[source]
	if b == nil {
		b = &strings.Builder{}
		c.captured[source] = b
	}
	b.WriteString(strings.TrimRight(text, "\n"))
	b.WriteByte('\n')
}

// capturePhone adds a stanza the phone got, as one line of canonical XML
// (see canonicalXML).
func (c *tsCase) capturePhone(stanza string) {
	c.t.Helper()
	x, err := canonicalXML(stanza)
	if err != nil {
		c.t.Fatalf("the phone's stanza %s: %v", stanza, err)
	}
	c.capture("phone", x)
}

// lookup captures what GET /v1/registration answers for node, as the
// source "registration": the status line, then the body.
func (c *tsCase) lookup(node string) int {
	c.t.Helper()
	return c.get("registration", c.api+"/v1/registration?node="+url.QueryEscape(node))
}

// readyz captures what GET /readyz answers, as the source "readyz".
func (c *tsCase) readyz() int {
	c.t.Helper()
	return c.get("readyz", c.api+"/readyz")
}

// metrics captures p2http's and p2xmpp's metrics, as the source
// "metrics", when they run.
func (c *tsCase) metrics() {
	c.t.Helper()
	if c.p2http != nil {
		c.get("metrics", c.api+"/metrics")
	}
	if c.p2xmpp != nil {
		c.get("metrics", "http://"+c.p2xmppMetrics+"/metrics")
	}
}

// get captures what GET url answers, as source: the status line, then
// the body.
func (c *tsCase) get(source, url string) int {
	c.t.Helper()
	res, err := http.Get(url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	c.capture(source, res.Proto+" "+res.Status+"\n"+string(body))
	return res.StatusCode
}

// waitServerFor waits until the server logged the line its kind has in
// want, if any, since the case began.
func (c *tsCase) waitServerFor(want map[xmppserver.Kind]string) {
	c.t.Helper()
	if s := want[c.srv.Kind]; s != "" {
		c.waitServer(s, 1)
	}
}

// doctor runs `p2http doctor` or `p2xmpp doctor` (as p names) with args
// and the environment p was started with, and captures what it prints as
// the source "p2http-doctor" or "p2xmpp-doctor". It reports whether the
// doctor found nothing failing (exit 0).
func (c *tsCase) doctor(p *proc, args ...string) bool {
	c.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"doctor"}, args...)...)
	cmd.Env = p.env
	out, err := runWithTimeout(cmd, time.Minute)
	c.capture(p.name+"-doctor", string(out))
	c.doctors = append(c.doctors, string(out))
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		c.t.Fatalf("%s doctor: %v\n%s", p.name, err, out)
	}
	return err == nil
}

// runWithTimeout runs cmd and returns its output, standard output and
// error together; it kills cmd after d.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.Bytes(), err
}

// sources stops p2http and p2xmpp, so that their logs are complete, and
// returns what each source showed: the captures, and the logs of p2http,
// p2xmpp and the XMPP server since the case began. It fails the case when
// p2http's or p2xmpp's log holds anything private.
func (c *tsCase) sources() map[string]string {
	c.t.Helper()
	for _, p := range c.procs {
		p.stop()
	}
	out := map[string]string{string(c.srv.Kind): c.serverLog()}
	for _, p := range c.procs {
		out[p.name] += p.Logs()
		for _, s := range c.private {
			if s != "" && strings.Contains(p.Logs(), s) {
				c.t.Errorf("%s logged %q", p.name, s)
			}
		}
	}
	for _, d := range c.doctors {
		for _, s := range c.private {
			if s != "" && strings.Contains(d, s) {
				c.t.Errorf("a doctor printed %q", s)
			}
		}
	}
	for k, b := range c.captured {
		out[k] = b.String()
	}
	return out
}

// canonicalXML writes a stanza as one line, the form the guide quotes:
// elements without prefixes, a namespace written where it changes from
// the stream's (jabber:client) or the parent's, the
// attributes in alphabetical order in double quotes, empty elements
// closed at once, no whitespace between elements.
func canonicalXML(raw string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	var b strings.Builder
	// The namespace of each open element, under the stream's default.
	spaces := []string{"jabber:client"}
	open := false // a start tag is written up to its '>'
	var root string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		var syntax *xml.SyntaxError
		if errors.As(err, &syntax) && syntax.Msg == "unexpected EOF" && len(spaces) == 2 {
			// The client hands a reply over without the end tag of its
			// top element: end it.
			if open {
				b.WriteString("/>")
			} else {
				b.WriteString("</" + root + ">")
			}
			break
		}
		if err != nil {
			return "", err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(spaces) == 1 {
				root = tok.Name.Local
			}
			if open {
				b.WriteString(">")
			}
			b.WriteString("<" + tok.Name.Local)
			if tok.Name.Space != spaces[len(spaces)-1] {
				b.WriteString(` xmlns="` + escapeXML(tok.Name.Space) + `"`)
			}
			var attrs []string
			for _, a := range tok.Attr {
				switch {
				case a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns":
					continue // declarations: written above where they matter
				case a.Name.Space == "http://www.w3.org/XML/1998/namespace" || a.Name.Space == "xml":
					attrs = append(attrs, `xml:`+a.Name.Local+`="`+escapeXML(a.Value)+`"`)
				case a.Name.Space == "":
					attrs = append(attrs, a.Name.Local+`="`+escapeXML(a.Value)+`"`)
				default:
					attrs = append(attrs, a.Name.Space+":"+a.Name.Local+`="`+escapeXML(a.Value)+`"`)
				}
			}
			slices.Sort(attrs)
			for _, a := range attrs {
				b.WriteString(" " + a)
			}
			spaces = append(spaces, tok.Name.Space)
			open = true
		case xml.EndElement:
			if open {
				b.WriteString("/>")
			} else {
				b.WriteString("</" + tok.Name.Local + ">")
			}
			open = false
			spaces = spaces[:len(spaces)-1]
		case xml.CharData:
			text := strings.TrimSpace(string(tok))
			if text == "" {
				continue
			}
			if open {
				b.WriteString(">")
				open = false
			}
			b.WriteString(escapeXML(text))
		}
	}
	return b.String(), nil
}

func escapeXML(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "&#34;", "&quot;")
}

// docBlock is one fenced block of the guide quoting a source: the info
// string is `LANG SOURCE [SERVER] [VERSION]`, such as "log p2http",
// "xml phone ejabberd" or "log prosody 0.12".
type docBlock struct {
	line    int // of the opening fence, for messages
	lang    string
	source  string
	server  xmppserver.Kind // "" for any
	version string          // a version prefix of the server's package; "" for any
	lines   []string
}

// docCase is one case of the guide: its marker's name and its blocks.
type docCase struct {
	name   string
	line   int
	blocks []docBlock
}

var (
	caseMarker = regexp.MustCompile(`^<!-- case: ([a-z0-9-]+) -->$`)
	fence      = regexp.MustCompile("^```(\\S*)(.*)$")
)

// quotedSources are the sources a block may quote; any other fenced
// block (sh, yaml, a plain one) is prose.
var quotedSources = map[string]bool{
	"p2http": true, "p2xmpp": true, "prosody": true, "ejabberd": true,
	"phone": true, "readyz": true, "registration": true, "metrics": true,
	"p2http-doctor": true, "p2xmpp-doctor": true,
}

// parseGuide reads the guide's cases. A block quoting a source before the
// first marker is an error: nothing would check it.
func parseGuide(text string) ([]docCase, error) {
	var cases []docCase
	var block *docBlock
	inFence := false
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		if m := fence.FindStringSubmatch(l); m != nil {
			if inFence {
				if block != nil {
					cases[len(cases)-1].blocks = append(cases[len(cases)-1].blocks, *block)
				}
				inFence, block = false, nil
				continue
			}
			inFence = true
			words := strings.Fields(m[2])
			if len(words) == 0 || !quotedSources[words[0]] {
				continue
			}
			b := &docBlock{line: n, lang: m[1], source: words[0]}
			if b.source == string(xmppserver.Prosody) || b.source == string(xmppserver.Ejabberd) {
				b.server = xmppserver.Kind(b.source)
			}
			for _, w := range words[1:] {
				switch {
				case w == string(xmppserver.Prosody) || w == string(xmppserver.Ejabberd):
					b.server = xmppserver.Kind(w)
				case w[0] >= '0' && w[0] <= '9' && b.server != "":
					b.version = w
				default:
					return nil, fmt.Errorf("line %d: %q: after the source, a server (prosody, ejabberd) and a version", n, l)
				}
			}
			if len(cases) == 0 {
				return nil, fmt.Errorf("line %d: a quoted block before the first case marker", n)
			}
			block = b
			continue
		}
		if inFence {
			if block != nil {
				block.lines = append(block.lines, l)
			}
			continue
		}
		if m := caseMarker.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			cases = append(cases, docCase{name: m[1], line: n})
		} else if strings.Contains(l, "<!-- case:") {
			return nil, fmt.Errorf("line %d: %q is not a case marker <!-- case: name -->", n, l)
		}
	}
	if inFence {
		return nil, errors.New("a fenced block is not closed")
	}
	return cases, nil
}

// quotes returns what a block quotes, each to be found in one line of its
// source: its lines, or for XML the whole block as one line (its lines
// joined, with no whitespace between elements).
func (b docBlock) quotes() []string {
	if b.lang == "xml" {
		var parts []string
		for _, l := range b.lines {
			if l = strings.TrimSpace(l); l != "" {
				parts = append(parts, l)
			}
		}
		return []string{strings.Join(parts, "")}
	}
	var out []string
	for _, l := range b.lines {
		if l = squeeze(l); l != "" && l != "…" {
			out = append(out, l)
		}
	}
	return out
}

// squeeze trims a line and turns each run of blanks (Prosody's tabs) into
// one space.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// quotePattern is the pattern a quoted line stands for: the text as it is,
// with "…" standing for any text, matched against a whole line.
func quotePattern(q string) *regexp.Regexp {
	parts := strings.Split(q, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`)
}

// findQuote reports whether a line of text (each squeezed) matches q.
func findQuote(q, text string) bool {
	re := quotePattern(q)
	for _, l := range strings.Split(text, "\n") {
		if re.MatchString(squeeze(l)) {
			return true
		}
	}
	return false
}
