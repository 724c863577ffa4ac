package envflag_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/envflag"
)

type settings struct {
	addr, secret string
	dev          bool
	wait         time.Duration
	n            int
	list         []string
}

func declare(s *settings) *envflag.Set {
	return &envflag.Set{Name: "prog", Vars: []*envflag.Var{
		envflag.String(&s.addr, "X_ADDR", "addr", "127.0.0.1:1", "listen address"),
		envflag.String(&s.secret, "X_SECRET", "", "", "the secret").Required(),
		envflag.Bool(&s.dev, "X_DEV", "dev", "dev mode"),
		envflag.Duration(&s.wait, "X_WAIT", "wait", time.Second, "a wait"),
		envflag.Int(&s.n, "X_N", "n", 4, "how many"),
		envflag.Func("X_LIST", "list", "", "a list", func(v string) error {
			s.list = nil
			for _, x := range strings.Split(v, ",") {
				if x == "bad" {
					return errors.New("bad item")
				}
				if x != "" {
					s.list = append(s.list, x)
				}
			}
			return nil
		}).Doc("empty"),
		envflag.External("X_RUNTIME", "the runtime's", "read by the runtime"),
	}}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The environment sets each value, a flag overrides it, and an error names
// the variable.
func TestParse(t *testing.T) {
	var s settings
	set := declare(&s)
	err := set.Parse([]string{"-dev", "-list", "a,b"}, env(map[string]string{"X_ADDR": "[::1]:2", "X_N": "7", "X_LIST": "c", "X_SECRET": "s"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "[::1]:2" || !s.dev || s.wait != time.Second || s.n != 7 || strings.Join(s.list, ",") != "a,b" || s.secret != "s" {
		t.Fatalf("%+v", s)
	}
	if !set.Vars[0].Given() || set.Vars[3].Given() || !set.Vars[5].Given() {
		t.Fatal("Given")
	}

	for name, value := range map[string]string{"X_DEV": "maybe", "X_WAIT": "-1s", "X_N": "0", "X_LIST": "bad"} {
		err := declare(&settings{}).Parse(nil, env(map[string]string{name: value}), &bytes.Buffer{})
		var e *envflag.Error
		if !errors.As(err, &e) || e.Var != name || !strings.HasPrefix(err.Error(), "configuration: "+name+": ") {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
	if err := declare(&settings{}).Parse([]string{"stray"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unexpected argument") {
		t.Errorf("stray argument: %v", err)
	}
}

// -h lists every setting: the flags, the secrets, the variables read by
// others.
func TestUsage(t *testing.T) {
	var s settings
	set := declare(&s)
	set.Usage = func(w io.Writer, flags func()) {
		fmt.Fprintln(w, "Usage:")
		flags()
		fmt.Fprintln(w, set.Secrets())
		fmt.Fprintln(w, set.Externals())
	}
	var out bytes.Buffer
	if err := set.Parse([]string{"-h"}, env(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, v := range set.Vars {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("-h does not list %s:\n%s", v.Name, out.String())
		}
	}
	if !strings.Contains(out.String(), "The secrets come from the environment only: X_SECRET (required).") {
		t.Errorf("-h:\n%s", out.String())
	}
}

const doc = "# Prog\n\n## Settings\n\n" +
	"| variable | default | meaning |\n| --- | --- | --- |\n" +
	"| `X_ADDR` | `127.0.0.1:1` | listen address |\n" +
	"| `X_SECRET` | required | the secret |\n" +
	"| `X_DEV`, `X_WAIT` | `false` | dev mode; a wait |\n" +
	"| `X_N` | `4` | how many |\n" +
	"| `X_LIST` | empty | a list |\n" +
	"| `X_RUNTIME` | the runtime's | read by the runtime |\n\nAfter.\n"

// The docs' table must list every variable declared, none other, with
// the default declared.
func TestCheckDoc(t *testing.T) {
	set := declare(&settings{})
	err := set.CheckDoc(doc, "## Settings")
	if err == nil || !strings.Contains(err.Error(), "X_WAIT: the docs give the default `false`, the declaration `1s`") ||
		strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("one wrong default: %v", err)
	}
	good := strings.Replace(doc, "| `X_DEV`, `X_WAIT` | `false` |", "| `X_DEV` | `false` | dev mode |\n| `X_WAIT` | `1s` |", 1)
	if err := set.CheckDoc(good, "## Settings"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ doc, want string }{
		{strings.Replace(good, "| `X_N` | `4` | how many |\n", "", 1), "X_N: prog declares it, but the docs do not list it"},
		{strings.Replace(good, "| `X_N` |", "| `X_N`, `X_M` |", 1), "X_M: the docs list it, but prog does not declare it"},
		{strings.Replace(good, "| `X_N` |", "| `X_N`, `X_ADDR` |", 1), "X_ADDR: the docs list it twice"},
		{strings.Replace(good, "| `X_SECRET` | required |", "| `X_SECRET` | none |", 1), "X_SECRET: the docs give the default none, the declaration required"},
		{strings.Replace(good, "## Settings", "## Other", 1), "no line"},
	} {
		if err := set.CheckDoc(c.doc, "## Settings"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
}

// SourceNames finds the names in string literals of non-test Go files.
func TestSourceNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package a\n\n// X_COMMENT\nvar a = getenv(\"X_READ\") + \"X_READ_NOT \" + `X_RAW`\n")
	write("a_test.go", "package a\n\nvar b = \"X_TEST\"\n")
	write("testdata/c.go", "package c\n\nvar c = \"X_DATA\"\n")
	got, err := envflag.SourceNames(dir, regexp.MustCompile(`^X_[A-Z_]+$`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["X_READ"]) != 1 || len(got["X_RAW"]) != 1 {
		t.Fatalf("%v", got)
	}
}
