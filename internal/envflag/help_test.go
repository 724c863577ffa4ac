package envflag_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/envflag"
)

// After -h, RouteUsage hands the usage back as a Help; after a mistake it
// writes it to standard error.
func TestRouteUsage(t *testing.T) {
	var s settings
	var usage, stderr bytes.Buffer
	err := envflag.RouteUsage(declare(&s).Parse([]string{"-h"}, env(nil), &usage), &usage, &stderr)
	var help *envflag.Help
	if !errors.As(err, &help) || !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.Usage, "X_ADDR") || stderr.Len() != 0 {
		t.Fatalf("-h: %v, usage %v, stderr %q", err, help, stderr.String())
	}
	usage.Reset()
	err = envflag.RouteUsage(declare(&s).Parse([]string{"-nonsense"}, env(nil), &usage), &usage, &stderr)
	if err == nil || errors.As(err, &help) || !strings.Contains(stderr.String(), "-nonsense") || !strings.Contains(stderr.String(), "X_ADDR") {
		t.Fatalf("a wrong flag: %v, stderr %q", err, stderr.String())
	}
}

// An error about a setting the command line gave names its flag; one from
// the environment names the variable.
func TestBlame(t *testing.T) {
	var s settings
	set := declare(&s)
	err := set.Parse([]string{"-list", "a,bad"}, env(nil), &bytes.Buffer{})
	var e *envflag.Error
	if !errors.As(err, &e) || e.Var != "-list" {
		t.Fatalf("-list bad: %v", err)
	}
	if err := set.Parse(nil, env(map[string]string{"X_LIST": "bad"}), &bytes.Buffer{}); !errors.As(err, &e) || e.Var != "X_LIST" {
		t.Fatalf("X_LIST=bad: %v", err)
	}
	// A check of the values parsed, such as a config's validate.
	if err := set.Parse([]string{"-addr", "x"}, env(map[string]string{"X_N": "2"}), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	check := errors.Join(&envflag.Error{Var: "X_ADDR", Msg: "bad"}, fmt.Errorf("wrapped: %w", &envflag.Error{Var: "X_N", Msg: "bad"}))
	if got := set.Blame(check).Error(); got != "configuration: -addr: bad\nwrapped: configuration: X_N: bad" {
		t.Fatalf("Blame: %q", got)
	}
	if set.Source("X_ADDR") != "-addr" || set.Source("X_N") != "X_N" || set.Source("X_DEV") != "X_DEV" {
		t.Fatalf("Source: %s %s %s", set.Source("X_ADDR"), set.Source("X_N"), set.Source("X_DEV"))
	}
}
