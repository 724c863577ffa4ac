// Package prometheus_test checks the alerts beside it (alerts.yml) and the
// Grafana dashboard of ../grafana: promtool accepts the rules and passes
// their tests (alerts_test.yml), the commands docs/operations.md gives for
// that run, the dashboard's queries parse, and every metric and label value
// the alerts and the dashboard use is in a live /metrics of p2http and
// p2xmpp.
package prometheus_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/internal/testutil"
)

const (
	rulesFile     = "alerts.yml"
	rulesTestFile = "alerts_test.yml"
	dashboardFile = "../grafana/p2http.json"
	operationsDoc = "../../docs/operations.md"
	// version is what the binaries built here report in *_build_info.
	version = "contrib-test-1"
)

// promtool returns the path of promtool, and fails the test without it:
// scripts/test-deps.sh installs it for make test and CI.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: make test installs it (Debian's prometheus package, scripts/test-deps.sh)")
	}
	return path
}

// runPromtool runs promtool with args in dir, stdin as its input, and
// fails t when it fails.
func runPromtool(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRules(t *testing.T) {
	out := runPromtool(t, ".", nil, "check", "rules", rulesFile)
	if !strings.Contains(out, "SUCCESS: 6 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	if out := runPromtool(t, ".", nil, "test", "rules", rulesTestFile); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
	// Every alert has a test that expects it to fire.
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			fired[a.Alertname] = fired[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert != "" && !fired[r.Alert] {
			t.Errorf("%s: no test of %s expects it to fire", r.Alert, rulesTestFile)
		}
	}
}

// docCommands returns the lines of the fenced block that follows the
// comment naming TestDocCommands in docs/operations.md.
func docCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "TestDocCommands")
	if !ok {
		t.Fatalf("%s has no block marked for TestDocCommands", operationsDoc)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("%s: no ```sh block after the TestDocCommands mark", operationsDoc)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("%s: the TestDocCommands block does not end", operationsDoc)
	}
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// The commands docs/operations.md gives to check the rules run, as
// written, from the repository's root.
func TestDocCommands(t *testing.T) {
	promtool(t)
	cmds := docCommands(t)
	joined := strings.Join(cmds, "\n")
	for _, want := range []string{"promtool check rules contrib/prometheus/" + rulesFile, "promtool test rules contrib/prometheus/" + rulesTestFile} {
		if !strings.Contains(joined, want) {
			t.Errorf("the documented commands lack %q:\n%s", want, joined)
		}
	}
	for _, c := range cmds {
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", c, err, out)
		}
	}
}

// rule is one rule of alerts.yml.
type rule struct {
	Alert  string            `yaml:"alert"`
	Record string            `yaml:"record"`
	Expr   string            `yaml:"expr"`
	Labels map[string]string `yaml:"labels"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// dashboard is what the tests read of the Grafana dashboard.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// grafanaVar matches a Grafana variable in a query: $name or ${name}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// dashboardQueries returns the PromQL queries of the dashboard's panels,
// by panel title, and the metrics its variables read (label_values).
func dashboardQueries(t *testing.T, d dashboard) (queries map[string][]string, varMetrics []string) {
	t.Helper()
	queries = map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries[p.Title] = append(queries[p.Title], tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(metric, label)", v.Name, q.Query)
		}
		varMetrics = append(varMetrics, m[1]+"{"+m[2]+"}")
	}
	return queries, varMetrics
}

// The dashboard is one Grafana can import: panels with distinct ids,
// within the grid, each query on the data source variable; and each query
// parses as PromQL (promtool checks them as recording rules).
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard %q (uid %q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not query the data source variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	queries, _ := dashboardQueries(t, d)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, title := range slices.Sorted(maps.Keys(queries)) {
		for _, q := range queries[title] {
			if strings.TrimSpace(q) == "" {
				t.Errorf("panel %q has an empty query", title)
				continue
			}
			n++
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, strings.ReplaceAll(jsonString(expand(q)), "\n", " "))
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, dir, nil, "check", "rules", "dashboard.yml")
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check rules on the dashboard's queries:\n%s", out)
	}
}

// jsonString quotes s for YAML (a JSON string is a YAML one).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// expand replaces the dashboard's variables with what Grafana puts there:
// a range for $__rate_interval, "match anything" for the others.
func expand(q string) string {
	return grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		if strings.Contains(v, "__rate_interval") || strings.Contains(v, "__interval") {
			return "5m"
		}
		return ".*"
	})
}

// selector is one vector selector of a query: a metric name and its
// matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

// grouping are the label names of by, without, on and ignoring clauses.
var (
	selectorRE = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	matcherRE  = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	stringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	rangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	callRE     = regexp.MustCompile(`\b[A-Za-z_][A-Za-z0-9_]*\s*\(`)
	numberRE   = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b`)
	identRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// promqlKeywords are the identifiers of PromQL that name no metric.
var promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true}

// parseQuery finds the selectors of a PromQL query, with or without
// braces, and the label names its groupings use. It is a small scanner,
// not a parser: enough for the queries of this repository, which promtool
// has parsed (TestRules, TestDashboard).
func parseQuery(q string) (sels []selector, grouping []string) {
	q = grafanaVar.ReplaceAllString(q, "VAR")
	for _, m := range selectorRE.FindAllStringSubmatch(q, -1) {
		s := selector{name: m[1]}
		for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			s.matchers = append(s.matchers, matcher{mm[1], mm[2], mm[3]})
		}
		sels = append(sels, s)
	}
	rest := selectorRE.ReplaceAllString(q, " ")
	for _, m := range groupingRE.FindAllStringSubmatch(rest, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouping = append(grouping, l)
			}
		}
	}
	rest = groupingRE.ReplaceAllString(rest, " ")
	rest = stringRE.ReplaceAllString(rest, " ")
	rest = rangeRE.ReplaceAllString(rest, " ")
	rest = callRE.ReplaceAllString(rest, "(")
	rest = numberRE.ReplaceAllString(rest, " ")
	for _, id := range identRE.FindAllString(rest, -1) {
		if !promqlKeywords[id] {
			sels = append(sels, selector{name: id})
		}
	}
	return sels, grouping
}

func TestParseQuery(t *testing.T) {
	sels, grouping := parseQuery(`histogram_quantile(0.99, sum by (le, service) (rate(a_bucket{x="1",y!~"$v"}[$__rate_interval])))
		/ ignoring(z) b_total > 0.5 and on (instance) c{} unless d == bool 1e3`)
	var names []string
	for _, s := range sels {
		names = append(names, s.name)
	}
	if !slices.Equal(names, []string{"a_bucket", "c", "b_total", "d"}) || !slices.Equal(grouping, []string{"le", "service", "z", "instance"}) {
		t.Fatalf("names %v, grouping %v", names, grouping)
	}
	if m := sels[0].matchers; len(m) != 2 || m[0] != (matcher{"x", "=", "1"}) || m[1] != (matcher{"y", "!~", "VAR"}) {
		t.Fatalf("matchers %v", m)
	}
}

// series are the series of a scrape, by metric name.
type series map[string][]map[string]string

var lineRE = regexp.MustCompile(`^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$`)

func parseScrape(t *testing.T, text string, into series) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		labels := map[string]string{}
		for _, l := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[3]
		}
		into[m[1]] = append(into[m[1]], labels)
	}
}

// Every metric, and every label name and value, that the alerts and the
// dashboard use is in what a running p2http and p2xmpp export before any
// push: a query naming a series that does not exist shows nothing and
// alerts on nothing, silently.
func TestNamesInALiveScrape(t *testing.T) {
	dir := t.TempDir()
	bin := build(t, dir)

	// A further app, to see its label come from the configuration.
	f := fake.NewFCMProject("p2http-quicksy")
	t.Cleanup(f.Close)
	creds := filepath.Join(dir, "quicksy.json")
	config := filepath.Join(dir, "apps.yml")
	if err := os.WriteFile(creds, f.Credentials, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte("apps:\n  quicksy:\n    fcm:\n      credentials: "+creds+"\n      endpoint: "+f.Endpoint()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := start(t, bin["p2http"], []string{"P2_DEV=1", "P2_LISTEN=127.0.0.1:0", "P2_METRICS=127.0.0.1:0", "P2_LOG_FORMAT=json",
		"P2_JID=push.example.org", "P2_DATABASE_URL=sqlite:" + filepath.Join(dir, "p2.db"), "P2_CONFIG=" + config},
		"p2http listening", "metrics listening")
	if res, err := http.Get("http://" + p2["p2http listening"] + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	xm := start(t, bin["p2xmpp"], []string{"P2XMPP_JID=push.example.org", "P2XMPP_SECRET=component-secret",
		"P2XMPP_SERVER=127.0.0.1:1", "P2XMPP_API=http://" + p2["p2http listening"], "P2XMPP_METRICS=127.0.0.1:0",
		"P2XMPP_LOG_FORMAT=json"}, "metrics listening")

	live := series{}
	for name, addr := range map[string]string{"p2http": p2["metrics listening"], "p2xmpp": xm["metrics listening"]} {
		text := scrape(t, "http://"+addr+"/metrics")
		// promtool's lint of names, types and help.
		runPromtool(t, ".", []byte(text), "check", "metrics")
		parseScrape(t, text, live)
		want := name + `_build_info{goversion="`
		if !strings.Contains(text, want) || !strings.Contains(text, `version="`+version+`"} 1`) {
			t.Errorf("%s's metrics lack %s…,version=%q} 1", name, want, version)
		}
	}
	if !hasLabels(live, "p2http_service_state", map[string]string{"app": "quicksy", "service": "fcm", "state": "ok"}) {
		t.Error(`no p2http_service_state{app="quicksy",service="fcm",state="ok"}: the configured app is not a label value`)
	}
	if !hasLabels(live, "p2http_pushes_total", map[string]string{"app": "quicksy", "outcome": "failed", "reason": "upstream_rejected"}) {
		t.Error(`no p2http_pushes_total{app="quicksy",outcome="failed",reason="upstream_rejected"} from the start`)
	}

	check := func(where, q string) {
		sels, grouping := parseQuery(q)
		labelNames := maps.Clone(targetLabels)
		for _, s := range sels {
			got, ok := live[s.name]
			if !ok {
				t.Errorf("%s: %s is in no live /metrics", where, s.name)
				continue
			}
			for _, l := range got {
				for k := range l {
					labelNames[k] = true
				}
			}
			for _, m := range s.matchers {
				switch {
				case !labelNames[m.label]:
					t.Errorf("%s: %s has no label %s", where, s.name, m.label)
				case (m.op == "=" || m.op == "!=") && m.value != "VAR" && !hasLabels(live, s.name, map[string]string{m.label: m.value}):
					t.Errorf("%s: no series %s{%s=%q} in the live /metrics", where, s.name, m.label, m.value)
				}
			}
		}
		for _, l := range grouping {
			if !labelNames[l] {
				t.Errorf("%s: groups by %s, which none of its metrics has", where, l)
			}
		}
	}
	for _, r := range loadRules(t) {
		check(rulesFile+" "+r.Alert+r.Record, r.Expr)
	}
	d := loadDashboard(t)
	queries, varMetrics := dashboardQueries(t, d)
	for title, qs := range queries {
		for _, q := range qs {
			check("dashboard panel "+title, q)
		}
	}
	for _, v := range varMetrics {
		name, label, _ := strings.Cut(strings.TrimSuffix(v, "}"), "{")
		if _, ok := live[name]; !ok || !targetLabels[label] && !anyLabel(live, name, label) {
			t.Errorf("dashboard variable: no %s with a label %s", name, label)
		}
	}
}

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = map[string]bool{"instance": true, "job": true}

// hasLabels reports whether a series of name has the labels of want (a
// label "" matches one that is absent, as in PromQL).
func hasLabels(s series, name string, want map[string]string) bool {
	return slices.ContainsFunc(s[name], func(l map[string]string) bool {
		for k, v := range want {
			if l[k] != v {
				return false
			}
		}
		return true
	})
}

// anyLabel reports whether a series of name has a label called label.
func anyLabel(s series, name, label string) bool {
	return slices.ContainsFunc(s[name], func(l map[string]string) bool {
		_, ok := l[label]
		return ok
	})
}

// build builds p2http and p2xmpp into dir, with version as their version.
func build(t *testing.T, dir string) map[string]string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the binaries needs the go command on $PATH: %v", err)
	}
	out := map[string]string{}
	for _, name := range []string{"p2http", "p2xmpp"} {
		out[name] = filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b, err := exec.CommandContext(ctx, gobin, "build", "-ldflags", "-X main.version="+version, "-o", out[name], "../../cmd/"+name).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, b)
		}
	}
	return out
}

// start runs bin with env until the test ends, and waits for the JSON log
// lines whose msg is each of msgs; it returns their addr attributes by msg.
func start(t *testing.T, bin string, env []string, msgs ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan map[string]string, 1)
	log := &testutil.LogBuffer{}
	logDone := make(chan struct{}) // closed at the end of stderr: the process has exited
	go func() {
		defer close(logDone)
		addrs := map[string]string{}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintf(log, "%s\n", sc.Bytes())
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && slices.Contains(msgs, line.Msg) && line.Addr != "" {
				addrs[line.Msg] = line.Addr
				if len(addrs) == len(msgs) {
					found <- addrs
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-logDone:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-logDone
		}
		cmd.Wait()
	})
	select {
	case addrs := <-found:
		return addrs
	case <-logDone:
		t.Fatalf("%s stopped before logging %q:\n%s", filepath.Base(bin), msgs, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not log %q within a minute:\n%s", filepath.Base(bin), msgs, log.String())
	}
	return nil
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}
