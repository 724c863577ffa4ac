package testutil

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var _ io.Writer = (*LogBuffer)(nil)

func TestLogBufferConcurrent(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	got := b.String()
	if n := strings.Count(got, "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	for i := range 8 {
		for j := range 100 {
			if !strings.Contains(got, fmt.Sprintf("w%d-%d\n", i, j)) {
				t.Fatalf("line w%d-%d lost or torn", i, j)
			}
		}
	}
	if s := fmt.Sprintf("%s", &b); s != got {
		t.Fatalf("formatting a *LogBuffer with %%s gives %q, not its String", s)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func assertNoLeaks(what, logs string, secrets ...string) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		AssertNoLeaks(r, what, logs, secrets...)
	}()
	<-done
	return r
}

func TestAssertNoLeaks(t *testing.T) {
	const logs = "level=INFO msg=registered node=abc\nlevel=WARN msg=refused token=s3cret-token\n"
	for _, c := range []struct {
		name    string
		logs    string
		secrets []string
		fail    bool
		say     []string // what the failure message must hold
	}{
		{"clean", logs, []string{"alice@example.com", "other-secret"}, false, nil},
		{"no secrets", logs, nil, false, nil},
		{"empty secret ignored", logs, []string{""}, false, nil},
		{"leak", logs, []string{"alice@example.com", "s3cret-token"}, true, []string{"the log", `"s3cret-token"`, logs}},
		{"every leak named", logs, []string{"s3cret-token", "node=abc"}, true, []string{`"s3cret-token"`, `"node=abc"`}},
		{"nothing logged", "", nil, true, []string{"the log", "nothing was logged"}},
		{"nothing logged, secrets", "", []string{"s3cret-token"}, true, []string{"nothing was logged"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := assertNoLeaks("the log", c.logs, c.secrets...)
			if r.failed != c.fail {
				t.Fatalf("failed=%v, want %v: %s", r.failed, c.fail, r.msg)
			}
			for _, s := range c.say {
				if !strings.Contains(r.msg, s) {
					t.Fatalf("message does not hold %q:\n%s", s, r.msg)
				}
			}
		})
	}
}

const form = `<iq xmlns='jabber:component:accept' type='result' id='r1' from='push.example.org'>` +
	`<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' status='completed'>` +
	`<x xmlns='jabber:x:data' type='result'>` +
	`<field var='jid'><value>push.example.org</value></field>` +
	`<field var='node'><value>n0de</value></field>` +
	`<field var='empty'/>` +
	`</x></command></iq>`

func TestParseNode(t *testing.T) {
	n, err := ParseNode(form)
	if err != nil {
		t.Fatal(err)
	}
	if n.XMLName != (xml.Name{Space: "jabber:component:accept", Local: "iq"}) {
		t.Fatalf("name %v", n.XMLName)
	}
	if n.Attr("type") != "result" || n.Attr("id") != "r1" || n.Attr("from") != "push.example.org" || n.Attr("to") != "" {
		t.Fatalf("attrs %v", n.Attrs)
	}
	// encoding/xml keeps the default namespace declaration as an attribute.
	if n.Attr("xmlns") != "jabber:component:accept" {
		t.Fatalf("xmlns attribute %q", n.Attr("xmlns"))
	}
	cmd := n.Child("command")
	if cmd.XMLName.Space != "http://jabber.org/protocol/commands" || cmd.Attr("status") != "completed" {
		t.Fatalf("command %+v", cmd)
	}
	x := cmd.Child("x")
	if x.Attr("type") != "result" || len(x.Nodes) != 3 {
		t.Fatalf("form %+v", x)
	}
	if x.Field("jid") != "push.example.org" || x.Field("node") != "n0de" {
		t.Fatalf("fields jid=%q node=%q", x.Field("jid"), x.Field("node"))
	}
	if x.Field("empty") != "" || x.Field("missing") != "" || cmd.Field("jid") != "" {
		t.Fatal("a field without value, a missing field or a field outside the form has a value")
	}
	if c := n.Child("nothing"); c.XMLName.Local != "" || len(c.Nodes) != 0 || c.Attr("type") != "" || c.Child("x").XMLName.Local != "" {
		t.Fatalf("missing child is not the zero Node: %+v", c)
	}
}

func TestParseNodeText(t *testing.T) {
	n, err := ParseNode(`<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone &amp; away</text></error>`)
	if err != nil {
		t.Fatal(err)
	}
	if n.Nodes[0].XMLName.Local != "item-not-found" || n.Child("text").Text != "gone & away" {
		t.Fatalf("%+v", n)
	}
}

func TestParseNodeInvalid(t *testing.T) {
	for _, raw := range []string{"", "not xml", "<iq><unclosed></iq>"} {
		if _, err := ParseNode(raw); err == nil {
			t.Fatalf("%q parsed", raw)
		}
	}
}

// A Node marshals back to equivalent XML, as the component server's test
// does to show a stanza it read.
func TestNodeRoundTrip(t *testing.T) {
	n, err := ParseNode(form)
	if err != nil {
		t.Fatal(err)
	}
	b, err := xml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseNode(string(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if m.Child("command").Child("x").Field("node") != "n0de" || m.Attr("id") != "r1" {
		t.Fatalf("round trip lost content:\n%s", b)
	}
}

// Eventually returns once its condition holds, and fails with what when it
// does not hold in time.
func TestEventually(t *testing.T) {
	calls := 0
	Eventually(t, time.Second, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("returned after %d calls, want 3", calls)
	}
	r := &recorder{}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		Eventually(r, 50*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if !r.failed || r.msg != "never (gave up after 50ms)" {
		t.Fatalf("failed %v with %q", r.failed, r.msg)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before its 50ms", waited)
	}
}

func TestCookieJar(t *testing.T) {
	jar := CookieJar(t, "https://push.example.org/v1", &http.Cookie{Name: "jar", Value: "1"})
	u, err := url.Parse("https://push.example.org/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	if got := jar.Cookies(u); len(got) != 1 || got[0].Name != "jar" || got[0].Value != "1" {
		t.Errorf("cookies %v, want jar=1", got)
	}
}

// Run gives the program only PATH and the environment asked for, and
// returns its two outputs and exit code; JSONLines reads a JSON log.
func TestRunAndJSONLines(t *testing.T) {
	t.Setenv("P2_TEST_LEAK", "1")
	out, errOut, code := Run(t, "/bin/sh", t.TempDir(), map[string]string{"GREETING": "hi"},
		"-c", `echo "$GREETING${P2_TEST_LEAK}"; echo '{"level":"ERROR"}' >&2; exit 3`)
	if out != "hi\n" || errOut != "{\"level\":\"ERROR\"}\n" || code != 3 {
		t.Fatalf("Run: %q %q %d", out, errOut, code)
	}
	recs := JSONLines(t, "stderr", errOut)
	if len(recs) != 1 || recs[0]["level"] != "ERROR" {
		t.Fatalf("JSONLines: %v", recs)
	}
}

// FreeAddr is a loopback address that refuses connections, and can be
// listened on.
func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}
