package main

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/envflag"
)

// The table of docs/p2xmpp.md lists every variable settings declares and
// no other, each with the default declared: they cannot drift.
func TestDocsSettingsTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/p2xmpp.md")
	if err != nil {
		t.Fatal(err)
	}
	if err := settings(&config{}).CheckDoc(string(doc), "## p2xmpp's settings"); err != nil {
		t.Errorf("docs/p2xmpp.md's table of settings and settings (config.go) differ:\n%v", err)
	}
}

// Every P2XMPP_ variable the code names — a string literal in a Go file of
// the module, tests aside — or the docs and packaging name is declared by
// settings, so that -h and docs/p2xmpp.md list it.
func TestEveryVariableIsDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range settings(&config{}).Vars {
		declared[v.Name] = true
	}
	inCode, err := envflag.SourceNames("../..", regexp.MustCompile(`^P2XMPP_[A-Z0-9_]+$`))
	if err != nil {
		t.Fatal(err)
	}
	if len(inCode) < len(declared) {
		t.Fatalf("found only %d variables in the code: %v", len(inCode), inCode)
	}
	for name, where := range inCode {
		if !declared[name] {
			t.Errorf("%s, named at %s, is not declared in settings (config.go)", name, strings.Join(where, ", "))
		}
	}
	inDocs := regexp.MustCompile(`\bP2XMPP_[A-Z0-9_]+\*?`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "../.." && strings.HasPrefix(d.Name(), "."):
			return filepath.SkipDir
		case filepath.Ext(path) != ".md" && filepath.Ext(path) != ".env":
			return nil
		}
		b, err := os.ReadFile(path)
		for _, name := range inDocs.FindAllString(string(b), -1) {
			if !strings.HasSuffix(name, "*") && !declared[name] {
				t.Errorf("%s, named in %s, is not declared in settings (config.go)", name, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// p2xmpp -h lists every variable settings declares.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if _, err := loadConfig([]string{"-h"}, func(string) string { return "" }, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, v := range settings(&config{}).Vars {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("-h does not list %s:\n%s", v.Name, out.String())
		}
	}
}
