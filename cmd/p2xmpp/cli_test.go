package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/testutil"
)

// p2xmpp version, -version and --version print the version, as p2http's
// do; -h prints the usage on standard output and is no error; help lists
// the commands.
func TestVersionAndHelp(t *testing.T) {
	do := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := dispatch(context.Background(), args, func(string) string { return "" }, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		out, errOut, err := do(args...)
		if want := "p2xmpp " + buildinfo.Version(version) + " (" + runtime.Version() + ", "; err != nil || !strings.HasPrefix(out, want) || errOut != "" {
			t.Errorf("%q: %v, %q, want %q…", args, err, out, want)
		}
	}
	if _, _, err := do("version", "extra"); err == nil {
		t.Error("version took an argument")
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"doctor", "-h"}} {
		out, errOut, err := do(args...)
		if err != nil || !strings.Contains(out, "Usage: p2xmpp") || !strings.Contains(out, "P2XMPP_JID") || errOut != "" {
			t.Errorf("%q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
		}
	}
	// -h lists the commands, as help does, then p2xmpp's flags.
	out, _, _ := do("-h")
	if !strings.Contains(out, "  doctor ") || !strings.Contains(out, "\nFlags of p2xmpp:\n") || !strings.Contains(out, "-server") {
		t.Errorf("-h:\n%s", out)
	}
	out, errOut, err := do("help")
	if err != nil || errOut != "" || !strings.Contains(out, "  doctor ") || !strings.Contains(out, "  version ") || strings.Contains(out, "-server") {
		t.Errorf("help: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if _, _, err := do("frobnicate"); err == nil || err.Error() != "unknown command \"frobnicate\"; `p2xmpp help` lists the commands" {
		t.Errorf("unknown command: %v", err)
	}
	out, errOut, err = do("-bogus")
	if err == nil || out != "" || !strings.Contains(errOut, "Usage of p2xmpp") {
		t.Errorf("-bogus: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}

// The built binary: the version set with -ldflags as make build sets it,
// -h on standard output with exit 0, and with P2XMPP_LOG_FORMAT=json the
// error that ends it as a JSON log line.
func TestBinaryVersionHelpAndErrors(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building p2xmpp needs the go command on $PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "p2xmpp")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exe := func(env map[string]string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return testutil.Run(t, bin, "", env, args...)
	}
	for _, arg := range []string{"version", "-version"} {
		if out, errOut, code := exe(nil, arg); code != 0 || !strings.HasPrefix(out, "p2xmpp v9.9.9-test (go") || errOut != "" {
			t.Errorf("p2xmpp %s: exit %d, %q, %q", arg, code, out, errOut)
		}
	}
	if out, errOut, code := exe(nil, "-h"); code != 0 || !strings.Contains(out, "Usage: p2xmpp") || errOut != "" {
		t.Errorf("p2xmpp -h: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	valid := map[string]string{"P2XMPP_JID": "push.example.org", "P2XMPP_SECRET": "s3cret"}
	for _, c := range []struct {
		name  string
		env   map[string]string
		args  []string
		names string
	}{
		{"config", map[string]string{"P2XMPP_LOG_FORMAT": "json"}, nil, "P2XMPP_JID"},
		{"flag", valid, []string{"-log-format", "json", "-server", "nonsense"}, "-server"},
		{"metrics", map[string]string{"P2XMPP_LOG_FORMAT": "json", "P2XMPP_METRICS": busy.Addr().String()}, nil, "P2XMPP_METRICS"},
	} {
		env := map[string]string{}
		for k, v := range valid {
			env[k] = v
		}
		for k, v := range c.env {
			env[k] = v
		}
		if c.name == "config" {
			delete(env, "P2XMPP_JID")
		}
		out, errOut, code := exe(env, c.args...)
		if code != 1 || out != "" || errOut == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
			continue
		}
		recs := testutil.JSONLines(t, c.name+": standard error", errOut)
		last := recs[len(recs)-1]
		if msg, _ := last["err"].(string); last["level"] != "ERROR" || last["msg"] != "p2xmpp failed" || !strings.Contains(msg, c.names) {
			t.Errorf("%s: the last line is %v, want the error naming %s", c.name, last, c.names)
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("%s: the secret was printed", c.name)
		}
	}
	if _, errOut, code := exe(nil); code != 1 || !strings.HasPrefix(errOut, "p2xmpp: configuration: P2XMPP_JID: is required") {
		t.Errorf("text: exit %d, %q", code, errOut)
	}
}
