package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
)

// chromium is Debian's Chromium, which make test installs (scripts/test-deps.sh).
const chromium = "/usr/bin/chromium"

// docsGet sends one request without following redirects or decoding gzip;
// header holds name/value pairs.
func docsGet(t *testing.T, method, rawURL string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	json.Unmarshal(raw, &out.Body)
	return out
}

// resolve returns the path that ref, found in the page at base, names.
func resolve(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r, err := url.Parse(html.UnescapeString(ref))
	if err != nil {
		t.Fatalf("reference %q: %v", ref, err)
	}
	return b.ResolveReference(r).Path
}

// vendoredRedoc is api/docs/redoc.standalone.js, the file the binary embeds.
func vendoredRedoc(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("docs/redoc.standalone.js")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDocsHTTP checks /docs and the bundle over plain HTTP, with API tokens
// configured: the documentation, like /openapi.yaml, needs none.
func TestDocsHTTP(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"docs-token"}})
	js := vendoredRedoc(t)
	jsURL := e.URL + "/docs/redoc.standalone.js"

	t.Run("page", func(t *testing.T) {
		r := docsGet(t, "GET", e.URL+"/docs")
		if r.Status != 200 {
			t.Fatalf("status %d: %s", r.Status, r.Raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self';"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
			t.Errorf("Content-Security-Policy %q allows too much", csp)
		}
		page := string(r.Raw)
		if !strings.Contains(page, "<title>p2http API</title>") {
			t.Errorf("no title:\n%s", page)
		}
		spec := regexp.MustCompile(`<redoc spec-url="([^"]+)"`).FindStringSubmatch(page)
		if spec == nil || resolve(t, e.URL+"/docs", spec[1]) != "/openapi.yaml" {
			t.Errorf("the page does not point Redoc at /openapi.yaml:\n%s", page)
		}
		src := regexp.MustCompile(`<script src="([^"]+)"`).FindAllStringSubmatch(page, -1)
		if len(src) != 1 || resolve(t, e.URL+"/docs", src[0][1]) != "/docs/redoc.standalone.js" {
			t.Errorf("the page does not load /docs/redoc.standalone.js (and nothing else):\n%s", page)
		}
		if regexp.MustCompile(`(src|href)="[a-z]*:?//`).MatchString(page) {
			t.Errorf("the page refers to another host:\n%s", page)
		}
		if r := docsGet(t, "GET", e.URL+"/openapi.yaml"); r.Status != 200 || !bytes.Equal(r.Raw, p2http.OpenAPI) {
			t.Errorf("GET /openapi.yaml: %d", r.Status)
		}
	})

	t.Run("bundle", func(t *testing.T) {
		r := docsGet(t, "GET", jsURL)
		if r.Status != 200 {
			t.Fatalf("status %d: %.200s", r.Status, r.Raw)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
			t.Errorf("content type %q", ct)
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("Content-Encoding %q for a client that asked for none", ce)
		}
		if !bytes.Equal(r.Raw, js) {
			t.Fatalf("served %d bytes that are not docs/redoc.standalone.js (%d bytes)", len(r.Raw), len(js))
		}
		cc := r.Header.Get("Cache-Control")
		m := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(cc)
		if m == nil {
			t.Fatalf("Cache-Control %q has no max-age", cc)
		}
		if age, _ := strconv.Atoi(m[1]); age < 30*24*3600 {
			t.Errorf("Cache-Control %q is short", cc)
		}
		if !slices.Contains(r.Header.Values("Vary"), "Accept-Encoding") {
			t.Errorf("Vary %q", r.Header.Values("Vary"))
		}
		etag := r.Header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) {
			t.Fatalf("ETag %q", etag)
		}
		if r := docsGet(t, "GET", jsURL, "If-None-Match", etag); r.Status != 304 || len(r.Raw) != 0 {
			t.Errorf("If-None-Match %s: %d, %d bytes", etag, r.Status, len(r.Raw))
		}
		// The page names the bundle by its version, so that a new Redoc is
		// not hidden by the long cache.
		page := string(docsGet(t, "GET", e.URL+"/docs").Raw)
		if v := strings.Trim(etag, `"`); !strings.Contains(page, "redoc.standalone.js?v="+v+`"`) {
			t.Errorf("the page does not load the bundle as ?v=%s:\n%s", v, page)
		}

		z := docsGet(t, "GET", jsURL, "Accept-Encoding", "br, gzip;q=0.8")
		if z.Status != 200 || z.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("gzip: status %d, Content-Encoding %q", z.Status, z.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(z.Raw))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(unzipped, js) {
			t.Fatal("the gzipped bundle is not docs/redoc.standalone.js")
		}
		if len(z.Raw) > len(js)/2 {
			t.Errorf("gzip: %d bytes of %d", len(z.Raw), len(js))
		}
		t.Logf("bundle: %d bytes, %d gzipped", len(js), len(z.Raw))
		zetag := z.Header.Get("ETag")
		if zetag == "" || zetag == etag {
			t.Errorf("gzip ETag %q, plain %q: each encoding needs its own", zetag, etag)
		}
		if r := docsGet(t, "GET", jsURL, "Accept-Encoding", "gzip", "If-None-Match", zetag); r.Status != 304 {
			t.Errorf("If-None-Match %s: %d", zetag, r.Status)
		}
		for ae, want := range map[string]string{
			"gzip;q=0": "", "*": "gzip", "br": "", "*;q=0, gzip": "gzip", "gzip;q=0, *": "", "GZIP; Q=1": "gzip",
		} {
			if got := docsGet(t, "HEAD", jsURL, "Accept-Encoding", ae).Header.Get("Content-Encoding"); got != want {
				t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", ae, got, want)
			}
		}
	})

	t.Run("head", func(t *testing.T) {
		for _, c := range []struct{ path, ct string }{{"/docs", "text/html"}, {"/docs/redoc.standalone.js", "application/javascript"}} {
			get := docsGet(t, "GET", e.URL+c.path)
			r := docsGet(t, "HEAD", e.URL+c.path)
			if r.Status != 200 || len(r.Raw) != 0 || !strings.HasPrefix(r.Header.Get("Content-Type"), c.ct) {
				t.Errorf("HEAD %s: %d, %q, %d bytes", c.path, r.Status, r.Header.Get("Content-Type"), len(r.Raw))
			}
			if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(get.Raw)) {
				t.Errorf("HEAD %s: Content-Length %q, GET sends %d bytes", c.path, cl, len(get.Raw))
			}
		}
	})

	t.Run("slash", func(t *testing.T) {
		for _, m := range []string{"GET", "HEAD"} {
			r := docsGet(t, m, e.URL+"/docs/")
			if loc := r.Header.Get("Location"); r.Status != 301 || resolve(t, e.URL+"/docs/", loc) != "/docs" {
				t.Errorf("%s /docs/: %d to %q, want a redirect to /docs", m, r.Status, loc)
			}
		}
	})

	t.Run("method", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{{"POST", "/docs"}, {"DELETE", "/docs/redoc.standalone.js"}, {"PUT", "/docs/"}} {
			r := docsGet(t, c.method, e.URL+c.path)
			expectProblem(t, r, http.StatusMethodNotAllowed, "method-not-allowed")
			if allow := r.Header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", c.method, c.path, allow)
			}
		}
	})

	t.Run("readme", func(t *testing.T) {
		readme, err := os.ReadFile("docs/README.md")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(js)
		if !bytes.Contains(readme, []byte(hex.EncodeToString(sum[:]))) {
			t.Errorf("api/docs/README.md does not give the bundle's SHA-256 %x: run make update-redoc", sum)
		}
		m := regexp.MustCompile(`(?m)^- Version: ` + "`([^`]+)`").FindSubmatch(readme)
		// Redoc's error page shows its version: "ReDoc Version: ","2.5.4".
		if m == nil || !bytes.Contains(js, []byte(`ReDoc Version: ","`+string(m[1])+`"`)) {
			t.Errorf("api/docs/README.md does not give the bundle's version")
		}
		if _, err := os.Stat("docs/LICENSE-redoc"); err != nil {
			t.Error(err)
		}
	})
}

// TestDocsChromium opens /docs in headless Chromium and checks that Redoc
// renders every operation of openapi.yaml with nothing but the server.
// Chromium reaches everything, the loopback included, through a proxy that
// serves the API and refuses and records any other host, so the page is
// offline, and a request it makes elsewhere is seen. The test fails when
// Chromium is missing: CI installs it (.ci/run).
func TestDocsChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%v: install Chromium (apt-get install chromium), as make test does through scripts/test-deps.sh", err)
	}
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"docs-token"}})
	host := strings.TrimPrefix(e.URL, "http://")

	var (
		mu                   sync.Mutex
		served, outside, own []string
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodConnect || r.Host != host {
			req := r.Method + " " + r.Host + r.URL.Path
			if chromiumOwn(r.Host) {
				own = append(own, req)
			} else {
				outside = append(outside, req)
			}
			http.Error(w, "nothing may leave the test", http.StatusForbidden)
			return
		}
		served = append(served, r.Method+" "+r.URL.Path)
		e.Handler.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(),
		"--proxy-server="+proxy.URL, "--proxy-bypass-list=<-loopback>",
		"--enable-logging=stderr", "--v=0", // the console, with CSP violations, on stderr
		"--virtual-time-budget=15000", "--dump-dom", e.URL+"/docs")
	// On timeout, end Chromium's helper processes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("chromium ran %s", time.Since(start).Round(time.Millisecond))
	dom := stdout.String()
	if err != nil || dom == "" {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("chromium's log:\n%s\nDOM:\n%s", stderr.String(), dom)
		}
	}()

	mu.Lock()
	defer mu.Unlock()
	if len(outside) > 0 {
		t.Errorf("requests outside the server: %q", outside)
	}
	if len(own) > 0 {
		t.Logf("Chromium's own requests, refused: %q", own)
	}
	for _, want := range []string{"GET /docs", "GET /docs/redoc.standalone.js", "GET /openapi.yaml"} {
		if !slices.Contains(served, want) {
			t.Errorf("no %s; the server saw %q", want, served)
		}
	}
	// What the Content-Security-Policy stopped never reached the proxy.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") && strings.Contains(line, "Content Security Policy") &&
			!strings.Contains(line, "'https://cdn.redoc.ly/redoc/logo-mini.svg'") { // blocked on purpose, see docs.go
			t.Errorf("the Content-Security-Policy blocked: %s", line)
		}
	}

	for _, bad := range []string{"Something went wrong", "Error downloading", "Failed to load"} {
		if strings.Contains(dom, bad) {
			t.Errorf("Redoc shows an error (%q)", bad)
		}
	}
	doc, err := openapi3.NewLoader().LoadFromData(p2http.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " "))
	text = strings.Join(strings.Fields(text), " ")
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			what := method + " " + path
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s has no operationId or summary", what)
				continue
			}
			if !strings.Contains(dom, `id="operation/`+op.OperationID+`"`) {
				t.Errorf("%s: operation %q is not in the page", what, op.OperationID)
			}
			if !strings.Contains(text, strings.Join(strings.Fields(op.Summary), " ")) {
				t.Errorf("%s: summary %q is not in the page", what, op.Summary)
			}
		}
	}
	if n == 0 {
		t.Fatal("openapi.yaml has no operation")
	}
	t.Logf("%d operations rendered, %d bytes of DOM", n, len(dom))
}

// chromiumOwn reports whether host is one of the Google services Chromium
// calls on its own, with about:blank too (sign-in, updates, network time,
// autofill), and not a font server.
func chromiumOwn(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.HasPrefix(host, "fonts.") {
		return false
	}
	for _, d := range []string{"google.com", "googleapis.com", "gvt1.com"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}
