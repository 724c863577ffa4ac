package command_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/command"
	"github.com/p2http/p2http/internal/envflag"
)

// call is one run of a command: which, and with what.
type call struct {
	name string
	args []string
}

// program returns a program whose default is named def ("" for none), with
// a command stats that fails on "bad", and records their runs. A -h
// answers the usage as an *envflag.Help, as envflag's parsing does.
func program(def string, out *bytes.Buffer, calls *[]call) *command.Program {
	cmd := func(name string) func(context.Context, []string) error {
		return func(_ context.Context, args []string) error {
			*calls = append(*calls, call{name, args})
			for _, a := range args {
				switch a {
				case "-h", "-help", "--help":
					return &envflag.Help{Usage: "Usage of " + name + ":\n  -x\tan x\n"}
				case "bad":
					return errors.New(name + ": bad")
				}
			}
			return nil
		}
	}
	return &command.Program{
		Name: "prog", Version: "v1.2.3", Stdout: out,
		Default:  command.Command{Name: def, Args: "[flags]", Summary: "serve until stopped", Run: cmd("default")},
		Commands: []command.Command{{Name: "stats", Args: "[--json]", Summary: "count things", Run: cmd("stats")}},
		Footer:   []string{"A footer.", "Its second line."},
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		args []string
		name string
		rest []string
	}{
		{nil, "", nil},
		{[]string{"-listen", "x"}, "", []string{"-listen", "x"}},
		{[]string{"-h"}, "", []string{"-h"}},
		{[]string{"stats", "--json"}, "stats", []string{"--json"}},
		{[]string{"-version"}, "version", []string{}},
		{[]string{"--version", "x"}, "version", []string{"x"}},
		{[]string{"", "x"}, "", []string{"x"}},
	} {
		name, rest := command.Split(c.args)
		if name != c.name || len(rest) != len(c.rest) || (len(rest) > 0 && !reflect.DeepEqual(rest, c.rest)) {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", c.args, name, rest, c.name, c.rest)
		}
	}
}

// No command, or a flag first, runs the default with all of args; a named
// default runs by its name too; a command gets the arguments after its
// name; an error is the command's.
func TestDispatchRuns(t *testing.T) {
	for _, def := range []string{"serve", ""} {
		var out bytes.Buffer
		var calls []call
		p := program(def, &out, &calls)
		runs := [][]string{nil, {"-x", "1"}, {"stats", "--json"}}
		if def != "" {
			runs = append(runs, []string{def, "-x", "2"})
		}
		for _, args := range runs {
			if err := p.Dispatch(context.Background(), args); err != nil {
				t.Fatalf("%q: %v", args, err)
			}
		}
		want := []call{{"default", nil}, {"default", []string{"-x", "1"}}, {"stats", []string{"--json"}}}
		if def != "" {
			want = append(want, call{"default", []string{"-x", "2"}})
		}
		if !reflect.DeepEqual(calls, want) || out.Len() != 0 {
			t.Errorf("default %q: runs %q, want %q; stdout %q", def, calls, want, out.String())
		}
		if err := p.Dispatch(context.Background(), []string{"stats", "bad"}); err == nil || err.Error() != "stats: bad" {
			t.Errorf("a failing command: %v", err)
		}
		err := p.Dispatch(context.Background(), []string{"frobnicate"})
		if err == nil || err.Error() != "unknown command \"frobnicate\"; `prog help` lists the commands" {
			t.Errorf("an unknown command: %v", err)
		}
	}
	// An unnamed default is not a command called "".
	var calls []call
	if err := program("", &bytes.Buffer{}, &calls).Dispatch(context.Background(), []string{""}); err == nil || len(calls) != 0 {
		t.Errorf(`"" ran %q: %v`, calls, err)
	}
}

// help and -h list every command with its summary, aligned, and the
// footer; -h then shows the default's flags. All of it goes to Stdout and
// is no error.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	var calls []call
	p := program("serve", &out, &calls)
	list := "Usage: prog [command] [flags]\n\nCommands:\n" +
		"  serve    serve until stopped\n" +
		"  stats    count things\n" +
		"  version  print the version\n" +
		"  help     show this help\n" +
		"\nA footer.\nIts second line.\n"
	if err := p.Dispatch(context.Background(), []string{"help"}); err != nil || out.String() != list {
		t.Fatalf("help: %v\n%s\nwant\n%s", err, out.String(), list)
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		out.Reset()
		calls = nil
		if err := p.Dispatch(context.Background(), []string{h}); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if want := list + "\nFlags of serve:\nUsage of default:\n  -x\tan x\n"; out.String() != want {
			t.Errorf("%s:\n%s\nwant\n%s", h, out.String(), want)
		}
		if want := []call{{"default", []string{h}}}; !reflect.DeepEqual(calls, want) {
			t.Errorf("%s ran %q, want %q", h, calls, want)
		}
	}
	// A command's -h prints its usage only.
	out.Reset()
	if err := p.Dispatch(context.Background(), []string{"stats", "-h"}); err != nil || out.String() != "Usage of stats:\n  -x\tan x\n" {
		t.Errorf("stats -h: %v, %q", err, out.String())
	}
	// flag.ErrHelp alone, the usage already printed, is no error either.
	p.Commands[0].Run = func(context.Context, []string) error { return flag.ErrHelp }
	if err := p.Dispatch(context.Background(), []string{"stats", "-h"}); err != nil {
		t.Errorf("flag.ErrHelp: %v", err)
	}

	// Without a name, the default is not listed, and -h names the program.
	out.Reset()
	p = program("", &out, &calls)
	if err := p.Dispatch(context.Background(), []string{"-h"}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "serve") || !strings.Contains(got, "  stats    count things\n") || !strings.Contains(got, "\nFlags of prog:\nUsage of default:") {
		t.Errorf("-h without a named default:\n%s", got)
	}
	if c, ok := p.Lookup("help"); !ok || c.Name != "help" {
		t.Errorf("Lookup(help) = %v, %v", c, ok)
	}
	if _, ok := p.Lookup(""); ok {
		t.Error(`Lookup("") found the unnamed default`)
	}
}

// version, -version and --version print the name, the version, Go's
// version and the platform; version and help take no arguments, but -h.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	var calls []call
	p := program("serve", &out, &calls)
	want := "prog v1.2.3 (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		out.Reset()
		if err := p.Dispatch(context.Background(), args); err != nil || out.String() != want {
			t.Errorf("%q: %v, %q, want %q", args, err, out.String(), want)
		}
	}
	for _, name := range []string{"version", "help"} {
		out.Reset()
		if err := p.Dispatch(context.Background(), []string{name, "extra"}); err == nil || err.Error() != name+" takes no arguments" || out.Len() != 0 {
			t.Errorf("%s extra: %v, %q", name, err, out.String())
		}
		out.Reset()
		if err := p.Dispatch(context.Background(), []string{name, "-h"}); err != nil || !strings.HasPrefix(out.String(), "Usage: prog "+name+"\n\n") {
			t.Errorf("%s -h: %v, %q", name, err, out.String())
		}
	}
	if len(calls) != 0 {
		t.Errorf("ran %q", calls)
	}
}

// An unknown first argument is repeated only when it looks like a command:
// an account or a token typed there is not printed.
func TestUnknownArgumentNotRepeated(t *testing.T) {
	p := &command.Program{Name: "prog", Stdout: io.Discard, Commands: []command.Command{
		{Name: "run", Run: func(context.Context, []string) error { return nil }},
	}}
	for _, arg := range []string{"alice@example.org", "fcmTOKEN:APA91bXYZ"} {
		err := p.Dispatch(context.Background(), []string{arg})
		if err == nil || strings.Contains(err.Error(), arg) || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%q: %v", arg, err)
		}
	}
}
