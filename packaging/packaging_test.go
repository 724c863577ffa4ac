package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Where the README installs things; the units refer to these paths.
const (
	binDir  = "/usr/local/bin"
	confDir = "/etc/p2http"
)

// programs are the two binaries: cmd/NAME, systemd/NAME.service, env/NAME.env.
var programs = []struct {
	name   string
	prefix string // the prefix of the variables it reads
}{
	{"p2http", "P2_"},
	{"p2xmpp", "P2XMPP_"},
}

// secrets are the variables whose example lines must be marked SECRET in a
// comment directly above them. A database URL with a password is one too.
var secrets = map[string]bool{
	"P2_SECRET_KEY":    true,
	"P2_API_TOKENS":    true,
	"P2XMPP_SECRET":    true,
	"P2XMPP_API_TOKEN": true,
}

// hardening is what every unit must set, as its effective (last) value.
// Booleans are compared after normalisation to yes/no; "" means the key
// must be present with an empty value (for CapabilityBoundingSet: no
// capability at all).
var hardening = map[string]string{
	"DynamicUser":             "yes",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
}

// allowedFamilies are the socket families a unit may allow.
var allowedFamilies = map[string]bool{"AF_UNIX": true, "AF_INET": true, "AF_INET6": true}

// knownDirectives catches a misspelt key, which systemd only warns about
// and ignores (a typo in a hardening option would silently drop it). Add a
// directive here when a unit needs it (see systemd.directives(7)).
var knownDirectives = map[string][]string{
	"Unit": {"Description", "Documentation", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
		"Upholds", "Conflicts", "Before", "After", "OnFailure", "StartLimitIntervalSec",
		"StartLimitBurst", "ConditionPathExists", "AssertPathExists"},
	"Service": {"Type", "NotifyAccess", "ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop",
		"Restart", "RestartSec", "TimeoutStartSec", "TimeoutStopSec", "TimeoutSec", "WatchdogSec",
		"KillMode", "KillSignal", "SuccessExitStatus", "RestartPreventExitStatus",
		"Environment", "EnvironmentFile", "PassEnvironment", "UnsetEnvironment",
		"User", "Group", "DynamicUser", "SupplementaryGroups", "WorkingDirectory",
		"StateDirectory", "StateDirectoryMode", "RuntimeDirectory", "RuntimeDirectoryMode",
		"CacheDirectory", "LogsDirectory", "ConfigurationDirectory", "UMask",
		"LoadCredential", "LoadCredentialEncrypted", "SetCredential", "LimitNOFILE",
		"NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem",
		"ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers", "PrivateIPC",
		"PrivateMounts", "PrivateNetwork", "DevicePolicy", "DeviceAllow", "ProtectHostname",
		"ProtectClock", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectProc", "ProcSubset", "RestrictAddressFamilies",
		"RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
		"MemoryDenyWriteExecute", "RemoveIPC", "KeyringMode", "SystemCallArchitectures",
		"SystemCallFilter", "SystemCallErrorNumber", "IPAddressAllow", "IPAddressDeny",
		"ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "BindPaths", "BindReadOnlyPaths",
		"StandardOutput", "StandardError", "SyslogIdentifier"},
	"Install": {"WantedBy", "RequiredBy", "Alias", "Also"},
}

func TestUnits(t *testing.T) {
	reads := programReads(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			u := mustParseUnit(t, filepath.Join("systemd", p.name+".service"), false)

			execs := u.values("Service", "ExecStart")
			if len(execs) != 1 {
				t.Fatalf("%s: want one ExecStart=, have %q", u.path, execs)
			}
			argv := strings.Fields(execs[0])
			if want := binDir + "/" + p.name; argv[0] != want {
				t.Errorf("%s: ExecStart= runs %s, want %s (where packaging/README.md installs it)", u.path, argv[0], want)
			}
			if _, err := os.Stat(filepath.Join("..", "cmd", filepath.Base(argv[0]), "main.go")); err != nil {
				t.Errorf("%s: ExecStart= runs %s, which is no command of this repository (cmd/%[2]s/main.go): %v",
					u.path, filepath.Base(argv[0]), err)
			}
			if typ, _ := u.last("Service", "Type"); typ != "notify" {
				t.Errorf("%s: Type=%s, want notify (both binaries say when they are ready: TestNotify)", u.path, typ)
			}
			if fams, _ := u.last("Service", "RestrictAddressFamilies"); !slices.Contains(strings.Fields(fams), "AF_UNIX") {
				t.Errorf("%s: RestrictAddressFamilies=%s leaves out AF_UNIX: the notification socket is one", u.path, fams)
			}
			if na, ok := u.last("Service", "NotifyAccess"); ok && na != "main" {
				t.Errorf("%s: NotifyAccess=%s, want main (the default): only the binary notifies", u.path, na)
			}

			envFiles := u.values("Service", "EnvironmentFile")
			if want := confDir + "/" + p.name + ".env"; len(envFiles) != 1 || envFiles[0] != want {
				t.Errorf("%s: EnvironmentFile= is %q, want exactly %q (required: no leading -)", u.path, envFiles, want)
			}
			if _, err := os.Stat(filepath.Join("env", p.name+".env")); err != nil {
				t.Errorf("%s: its EnvironmentFile= has no example in packaging/env: %v", u.path, err)
			}
			for _, v := range u.values("Service", "Environment") {
				for _, kv := range strings.Fields(v) {
					name, _, _ := strings.Cut(kv, "=")
					if !reads[p.name][name] {
						t.Errorf("%s: Environment= sets %s, which %s does not read", u.path, name, p.name)
					}
				}
			}

			for key, want := range hardening {
				got, ok := u.last("Service", key)
				if !ok {
					t.Errorf("%s: hardening option %s= is missing (want %q)", u.path, key, want)
					continue
				}
				if normBool(got) != want {
					t.Errorf("%s: %s=%s, want %q", u.path, key, got, want)
				}
			}
			if user, _ := u.last("Service", "User"); user == "root" || user == "0" {
				t.Errorf("%s: User=%s: the service must not run as root", u.path, user)
			}
			filters := u.values("Service", "SystemCallFilter")
			if len(filters) == 0 || filters[0] != "@system-service" {
				t.Errorf("%s: SystemCallFilter= must start with the allow list @system-service, have %q", u.path, filters)
			}
			for _, f := range filters[min(1, len(filters)):] {
				if !strings.HasPrefix(f, "~") {
					t.Errorf("%s: SystemCallFilter=%s widens @system-service; only ~deny lists may follow it", u.path, f)
				}
			}
			if fams, ok := u.last("Service", "RestrictAddressFamilies"); !ok || fams == "" || strings.HasPrefix(fams, "~") {
				t.Errorf("%s: RestrictAddressFamilies= must be an allow list, have %q", u.path, fams)
			} else {
				for _, f := range strings.Fields(fams) {
					if !allowedFamilies[f] {
						t.Errorf("%s: RestrictAddressFamilies= allows %s; neither program needs it", u.path, f)
					}
				}
			}
			if wb := u.values("Install", "WantedBy"); !slices.Contains(wb, "multi-user.target") {
				t.Errorf("%s: WantedBy=%q, want multi-user.target", u.path, wb)
			}

			switch p.name {
			case "p2http":
				if sd, _ := u.last("Service", "StateDirectory"); sd != "p2http" {
					t.Errorf("%s: StateDirectory=%q, want p2http (the SQLite database and its key file)", u.path, sd)
				}
				if wd, _ := u.last("Service", "WorkingDirectory"); wd != "/var/lib/p2http" {
					t.Errorf("%s: WorkingDirectory=%q, want the state directory /var/lib/p2http "+
						"(the default sqlite:p2.db is relative to it)", u.path, wd)
				}
				if r, _ := u.last("Service", "Restart"); r != "on-failure" && r != "always" {
					t.Errorf("%s: Restart=%q, want on-failure or always", u.path, r)
				}
			case "p2xmpp":
				// A missing component makes ejabberd bounce pushes and
				// drop the users' push registrations: never stay down.
				if r, _ := u.last("Service", "Restart"); r != "always" {
					t.Errorf("%s: Restart=%q, want always", u.path, r)
				}
				if s, _ := u.last("Unit", "StartLimitIntervalSec"); s != "0" && s != "infinity" {
					t.Errorf("%s: StartLimitIntervalSec=%q, want 0: the start limit would stop the restarts", u.path, s)
				}
			}
		})
	}
}

// TestCredentialDropIns checks the example drop-ins in systemd/NAME.service.d:
// each Environment= points at a credential that a LoadCredential= line of
// the same file copies from /etc/p2http, and names a variable the program
// reads. Commented-out directives count: they are examples too.
func TestCredentialDropIns(t *testing.T) {
	reads := programReads(t)
	for _, p := range programs {
		paths, _ := filepath.Glob(filepath.Join("systemd", p.name+".service.d", "*.conf*"))
		for _, path := range paths {
			u := mustParseUnit(t, path, true)
			ids := map[string]bool{}
			for _, lc := range u.values("Service", "LoadCredential") {
				id, src, ok := strings.Cut(lc, ":")
				if !ok || !strings.HasPrefix(src, confDir+"/") {
					t.Errorf("%s: LoadCredential=%s: want ID:%s/FILE", path, lc, confDir)
				}
				ids[id] = true
			}
			for _, v := range u.values("Service", "Environment") {
				for _, kv := range strings.Fields(v) {
					name, val, _ := strings.Cut(kv, "=")
					if !reads[p.name][name] {
						t.Errorf("%s: Environment= sets %s, which %s does not read", path, name, p.name)
					}
					if id, ok := strings.CutPrefix(val, "%d/"); !ok || !ids[id] {
						t.Errorf("%s: %s=%s is not %%d/ID of a LoadCredential= in this file", path, name, val)
					}
				}
			}
		}
	}
}

func TestEnvExamples(t *testing.T) {
	reads := programReads(t)
	anyReads := map[string]bool{}
	for _, r := range reads {
		for v := range r {
			anyReads[v] = true
		}
	}
	files := map[string]*envFile{}
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			e := mustParseEnv(t, filepath.Join("env", p.name+".env"))
			files[p.name] = e
			seen := map[string]int{}
			for _, a := range e.assigns {
				switch {
				case strings.HasPrefix(a.name, "GO"): // the Go runtime's (GOMAXPROCS, GOMEMLIMIT, …)
				case !reads[p.name][a.name]:
					t.Errorf("%s:%d: %s is not a variable %s reads (its Go sources, through getenv)", e.path, a.line, a.name, p.name)
				}
				if a.active {
					if prev, dup := seen[a.name]; dup {
						t.Errorf("%s:%d: %s is set again (first on line %d)", e.path, a.line, a.name, prev)
					}
					seen[a.name] = a.line
				}
				if (secrets[a.name] || hasPassword(a.value)) && !a.markedSecret {
					t.Errorf("%s:%d: %s holds a secret: mark it with SECRET in the comment right above", e.path, a.line, a.name)
				}
			}
			// Prose may name the other program's variables (P2_JID in
			// p2xmpp.env), but only real ones.
			for v, line := range e.mentions {
				if !anyReads[v] {
					t.Errorf("%s:%d: mentions %s, which neither program reads", e.path, line, v)
				}
			}
			// Complete: every variable the program reads is in its
			// example, set, commented out, or named in a comment (the
			// credential paths that the drop-in sets).
			for v := range reads[p.name] {
				if _, ok := e.mentions[v]; !ok && strings.HasPrefix(v, p.prefix) {
					t.Errorf("%s: %s reads %s, which the example does not mention: add it (as #%[3]s=… when optional)", e.path, p.name, v)
				}
			}
		})
	}

	// The two files must fit together as they stand.
	h, x := files["p2http"], files["p2xmpp"]
	if h == nil || x == nil {
		return
	}
	if a, b := h.active("P2_JID"), x.active("P2XMPP_JID"); a == "" || a != b {
		t.Errorf("P2_JID=%q in p2http.env and P2XMPP_JID=%q in p2xmpp.env must be set and equal", a, b)
	}
	if listen, api := h.active("P2_LISTEN"), x.active("P2XMPP_API"); listen != "" && api != "" {
		if u, err := url.Parse(api); err != nil || u.Host != listen {
			t.Errorf("P2XMPP_API=%s in p2xmpp.env does not reach P2_LISTEN=%s of p2http.env", api, listen)
		}
	}
	if db := h.active("P2_DATABASE_URL"); strings.HasPrefix(db, "sqlite:") {
		// ProtectSystem=strict: the state directory is the only place
		// p2http may write, and SQLite writes its WAL and the key file
		// beside the database.
		if path := strings.TrimPrefix(db, "sqlite:"); !strings.HasPrefix(path, "/var/lib/p2http/") {
			t.Errorf("P2_DATABASE_URL=%s in p2http.env: the database must be in /var/lib/p2http/, the unit's StateDirectory", db)
		}
	}
}

// TestSystemdAnalyze runs systemd-analyze verify and an offline security
// review on the units (with the drop-in examples enabled) when
// systemd-analyze is installed.
func TestSystemdAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not installed; make test installs Debian's systemd package for it (scripts/test-deps.sh)")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	var units []string
	for _, p := range programs {
		// verify checks that ExecStart= is executable: point it at a stub.
		stub := filepath.Join(dir, "bin", p.name)
		writeFile(t, stub, "#!/bin/sh\nexit 0\n", 0o755)
		src, err := os.ReadFile(filepath.Join("systemd", p.name+".service"))
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(dir, "units", p.name+".service")
		writeFile(t, unit, strings.ReplaceAll(string(src), "ExecStart="+binDir+"/"+p.name, "ExecStart="+stub), 0o644)
		units = append(units, unit)
		dropins, _ := filepath.Glob(filepath.Join("systemd", p.name+".service.d", "*.conf*"))
		for _, d := range dropins {
			b, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			enabled := regexp.MustCompile(`(?m)^#([A-Z][A-Za-z]+=)`).ReplaceAllString(string(b), "$1")
			writeFile(t, filepath.Join(unit+".d", strings.TrimSuffix(filepath.Base(d), ".example")), enabled, 0o644)
		}
	}

	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...).CombinedOutput()
	// verify only warns about unknown keys and bad values: fail on any
	// line about our files. Lines about the host's own units are noise.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, dir) || strings.Contains(line, "p2http") || strings.Contains(line, "p2xmpp") {
			t.Errorf("systemd-analyze verify: %s", line)
		} else {
			t.Logf("systemd-analyze verify (not about our units): %s", line)
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	for _, unit := range units {
		// --threshold is in tenths: 20 is exposure 2.0, well inside "OK".
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
		if bytes.Contains(out, []byte("Unknown")) && bytes.Contains(out, []byte("--offline")) {
			t.Skipf("this systemd-analyze cannot review offline: %s", out)
		}
		overall := ""
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "Overall exposure level") {
				overall = strings.TrimSpace(line)
			}
		}
		t.Logf("%s", overall)
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 or failure: %v\n%s", filepath.Base(unit), err, out)
		}
	}
}

// unitFile is a parsed systemd unit or drop-in.
type unitFile struct {
	path       string
	directives []directive
}

type directive struct {
	section, key, value string
	line                int
}

// values returns the values of key in section, in order.
func (u *unitFile) values(section, key string) []string {
	var out []string
	for _, d := range u.directives {
		if d.section == section && d.key == key {
			out = append(out, d.value)
		}
	}
	return out
}

// last returns the effective value of a single-valued key.
func (u *unitFile) last(section, key string) (string, bool) {
	v := u.values(section, key)
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// mustParseUnit parses path as systemd.syntax(7) describes: [Section]
// headers, KEY=VALUE lines, # and ; comments, a trailing backslash joining
// the next line. With examples, "#Key=value" lines count as directives.
func mustParseUnit(t *testing.T, path string, examples bool) *unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unitFile{path: path}
	example := regexp.MustCompile(`^#([A-Z][A-Za-z]+=.*)$`)
	keyRE := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	section := ""
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(lines[i])
		if examples {
			if m := example.FindStringSubmatch(line); m != nil {
				line = m[1]
			}
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if next != "" && (next[0] == '#' || next[0] == ';') {
				continue
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				t.Fatalf("%s:%d: malformed section header %q", path, n, line)
			}
			section = line[1 : len(line)-1]
			if knownDirectives[section] == nil {
				t.Errorf("%s:%d: unexpected section [%s]", path, n, section)
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || !keyRE.MatchString(key):
			t.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
			continue
		case section == "":
			t.Errorf("%s:%d: %s= outside a section", path, n, key)
			continue
		case !slices.Contains(knownDirectives[section], key):
			t.Errorf("%s:%d: unknown directive %s= in [%s] (misspelt? if valid, add it to knownDirectives)", path, n, key, section)
		}
		u.directives = append(u.directives, directive{section, key, value, n})
	}
	return u
}

// normBool turns systemd's spellings of a boolean into yes or no.
func normBool(s string) string {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return "yes"
	case "no", "false", "off", "0":
		return "no"
	}
	return s
}

// envFile is a parsed example environment file.
type envFile struct {
	path     string
	assigns  []envAssign
	mentions map[string]int // every P2_/P2XMPP_ name in the file → first line
}

type envAssign struct {
	name, value  string
	active       bool // false for a "#NAME=value" example
	line         int
	markedSecret bool // a comment line directly above says SECRET
}

// active returns the value a VAR= line sets, or "".
func (e *envFile) active(name string) string {
	for _, a := range e.assigns {
		if a.active && a.name == name {
			return a.value
		}
	}
	return ""
}

var varMention = regexp.MustCompile(`\bP2(?:XMPP)?_[A-Z0-9_]*[A-Z0-9]\b`)

// mustParseEnv reads an EnvironmentFile= example: comments, blank lines,
// VAR=value, and #VAR=value for an optional setting.
func mustParseEnv(t *testing.T, path string) *envFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := &envFile{path: path, mentions: map[string]int{}}
	assign := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	example := regexp.MustCompile(`^#([A-Z_][A-Z0-9_]*)=(.*)$`)
	var comment []string // the comment lines right above
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, v := range varMention.FindAllString(line, -1) {
			if _, ok := e.mentions[v]; !ok {
				e.mentions[v] = n
			}
		}
		trimmed := strings.TrimSpace(line)
		marked := slices.ContainsFunc(comment, func(c string) bool { return strings.Contains(c, "SECRET") })
		switch {
		case trimmed == "":
			comment = nil
		case example.MatchString(trimmed):
			m := example.FindStringSubmatch(trimmed)
			e.assigns = append(e.assigns, envAssign{m[1], unquote(m[2]), false, n, marked})
		case trimmed[0] == '#' || trimmed[0] == ';':
			comment = append(comment, trimmed)
		case strings.HasPrefix(trimmed, "export "):
			t.Errorf("%s:%d: systemd's EnvironmentFile= has no export: %q", path, n, line)
		case assign.MatchString(trimmed):
			m := assign.FindStringSubmatch(trimmed)
			e.assigns = append(e.assigns, envAssign{m[1], unquote(m[2]), true, n, marked})
		default:
			t.Errorf("%s:%d: neither a comment nor VAR=value: %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return e
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// hasPassword reports whether v is a URL carrying a password.
func hasPassword(v string) bool {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

var (
	readsOnce sync.Once
	readsMap  map[string]map[string]bool
	readsErr  error
)

// programReads returns, for each program, the P2_/P2XMPP_ variables its
// code reads: the Go files of this module that `go list -deps` says the
// command links, searched for string constants that reach a getenv call,
// directly (os.Getenv, os.LookupEnv, a getenv parameter or field), through
// a helper that passes its parameter on to one, or declared to
// internal/envflag (envflag.String, Func, …), whose Parse reads them.
func programReads(t *testing.T) map[string]map[string]bool {
	t.Helper()
	readsOnce.Do(func() {
		readsMap = map[string]map[string]bool{}
		for _, p := range programs {
			r, err := envReads("./cmd/" + p.name)
			if err != nil {
				readsErr = err
				return
			}
			readsMap[p.name] = r
		}
	})
	if readsErr != nil {
		t.Fatal(readsErr)
	}
	for _, p := range programs {
		if !readsMap[p.name][p.prefix+"JID"] {
			t.Fatalf("found no read of %sJID in %s's sources (found %v): the getenv analysis in this test needs updating",
				p.prefix, p.name, sortedKeys(readsMap[p.name]))
		}
	}
	return readsMap
}

func envReads(pkg string) (map[string]bool, error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}{{"\t"}}{{join .GoFiles " "}}{{end}}{{end}}`, pkg)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %v\n%s", pkg, err, stderr.Bytes())
	}
	reads := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, names, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range strings.Fields(names) {
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		packageEnvReads(files, reads)
	}
	return reads, nil
}

var envPrefix = regexp.MustCompile(`^P2(?:XMPP)?_[A-Z0-9_]+$`)

// packageEnvReads adds to reads the variables one package reads.
func packageEnvReads(files []*ast.File, reads map[string]bool) {
	type fn struct {
		params []string
		body   *ast.BlockStmt
	}
	funcs := map[string][]fn{} // by name: functions, methods and closures assigned to a name
	addFunc := func(name string, typ *ast.FuncType, body *ast.BlockStmt) {
		var params []string
		for _, f := range typ.Params.List {
			if len(f.Names) == 0 {
				params = append(params, "_")
			}
			for _, n := range f.Names {
				params = append(params, n.Name)
			}
		}
		funcs[name] = append(funcs[name], fn{params, body})
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Body != nil {
					addFunc(n.Name.Name, n.Type, n.Body)
				}
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i, r := range n.Rhs {
						if lit, ok := r.(*ast.FuncLit); ok {
							if id, ok := n.Lhs[i].(*ast.Ident); ok {
								addFunc(id.Name, lit.Type, lit.Body)
							}
						}
					}
				}
			case *ast.ValueSpec:
				for i, v := range n.Values {
					if lit, ok := v.(*ast.FuncLit); ok && i < len(n.Names) {
						addFunc(n.Names[i].Name, lit.Type, lit.Body)
					}
				}
			}
			return true
		})
	}

	// envArgs[name] holds the argument positions of name that end up in
	// a getenv call.
	envArgs := map[string]map[int]bool{}
	argsOf := func(call *ast.CallExpr) map[int]bool {
		var name string
		switch f := call.Fun.(type) {
		case *ast.Ident:
			name = f.Name
		case *ast.SelectorExpr:
			name = f.Sel.Name
			if x, ok := f.X.(*ast.Ident); ok && x.Name == "envflag" {
				// internal/envflag's declarations, which its Parse reads
				// through getenv: the variable's name follows the pointer
				// the value goes to, or comes first.
				switch name {
				case "String", "Bool", "Duration", "Int", "List":
					return map[int]bool{1: true}
				case "Func", "External":
					return map[int]bool{0: true}
				}
			}
		}
		switch name {
		case "getenv", "Getenv", "LookupEnv":
			return map[int]bool{0: true}
		}
		return envArgs[name]
	}
	for changed := true; changed; {
		changed = false
		for name, fns := range funcs {
			for _, f := range fns {
				ast.Inspect(f.body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					for i := range argsOf(call) {
						if i >= len(call.Args) {
							continue
						}
						id, ok := call.Args[i].(*ast.Ident)
						if !ok {
							continue
						}
						if p := slices.Index(f.params, id.Name); p >= 0 && !envArgs[name][p] {
							if envArgs[name] == nil {
								envArgs[name] = map[int]bool{}
							}
							envArgs[name][p] = true
							changed = true
						}
					}
					return true
				})
			}
		}
	}

	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for i := range argsOf(call) {
				if i >= len(call.Args) {
					continue
				}
				if lit, ok := call.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil && envPrefix.MatchString(s) {
						reads[s] = true
					}
				}
			}
			return true
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
