package xmppserver

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// Options.ExtraModules reach both servers' configurations: Prosody's
// modules_enabled and ejabberd's modules.
func TestExtraModules(t *testing.T) {
	for _, tc := range []struct {
		flavor flavor
		file   string
		want   string
	}{
		{prosodyFlavor{}, "prosody.cfg.lua", "\t\"adhoc\";\n"},
		{ejabberdFlavor{}, "ejabberd.yml", "\n  mod_adhoc: {}\n"},
	} {
		s := &Server{Dir: t.TempDir(), Domain: "example.org", Component: "push.example.org", ComponentSecret: "x",
			ports: map[string]int{"c2s": 5222, "component": 5347, "dist": 4370},
			opts:  Options{ExtraModules: []string{"adhoc"}}.withDefaults()}
		var noUser user.UnknownUserError
		if err := tc.flavor.setup(s); err != nil && !errors.As(err, &noUser) {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s lacks %q:\n%s", tc.file, tc.want, b)
		}
	}
}
