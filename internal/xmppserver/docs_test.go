package xmppserver

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsConfig: every line of the Prosody and ejabberd configurations in
// docs/p2xmpp.md is in the configuration the tests run, on both generations
// (they share it), bar the secret's placeholder.
func TestDocsConfig(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "p2xmpp.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang, comment string
		flavor        flavor
		file          string
	}{
		{"lua", "--", prosodyFlavor{}, "prosody.cfg.lua"},
		{"yaml", "#", ejabberdFlavor{}, "ejabberd.yml"},
	} {
		blocks := regexp.MustCompile("(?s)```"+tc.lang+"\n(.*?)```").FindAllSubmatch(doc, -1)
		if len(blocks) == 0 {
			t.Fatalf("docs/p2xmpp.md has no %s block", tc.lang)
		}
		s := &Server{Dir: t.TempDir(), Domain: "example.org", Component: "push.example.org", ComponentSecret: "x",
			ports: map[string]int{"c2s": 5222, "component": 5347, "dist": 4370}, opts: Options{}.withDefaults()}
		// ejabberd's setup ends giving its files to the ejabberd user, which
		// only an installed ejabberd has: the files are written by then.
		var noUser user.UnknownUserError
		if err := tc.flavor.setup(s); err != nil && !errors.As(err, &noUser) {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			have[configLine(l, tc.comment)] = true
		}
		checked := 0
		for _, block := range blocks {
			for _, l := range strings.Split(string(block[1]), "\n") {
				l = configLine(l, tc.comment)
				if l == "" || strings.Contains(l, "P2XMPP_SECRET") {
					continue
				}
				checked++
				if !have[l] {
					t.Errorf("docs/p2xmpp.md's %s line %q is not in the tests' %s:\n%s", tc.lang, l, tc.file, b)
				}
			}
		}
		if checked < 8 {
			t.Errorf("only %d %s lines checked", checked, tc.lang)
		}
	}
}

// configLine is a configuration line without its comment and blanks at
// either end.
func configLine(l, comment string) string {
	if i := strings.Index(l, comment); i >= 0 {
		l = l[:i]
	}
	return strings.TrimSpace(l)
}
