package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

// redocJS is Redoc's standalone bundle, vendored unmodified; docs/README.md
// says which version and how to update it.
//
//go:embed docs/redoc.standalone.js
var redocJS []byte

// docsCSP is the Content-Security-Policy of the /docs page: this server
// only, plus what Redoc needs, each checked by TestDocsChromium: inline
// styles (styled-components injects <style> elements), data: images (its
// icons) and a worker made from a blob: URL (the search index). It needs no
// inline script and no eval. The one outside resource the bundle asks for,
// the Redocly logo from cdn.redoc.ly, is blocked, and Redoc then hides it.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; worker-src blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// redocAsset is what /docs serves, made once: the page, the bundle's
// version and, on first request, the bundle gzipped.
type redocAsset struct {
	// version is the first 16 hex digits of the bundle's SHA-256: its
	// ETag, and the ?v= of its URL in the page, so that a new bundle is
	// not hidden by the year-long Cache-Control.
	version string
	page    []byte
	gzipped func() []byte
}

var redoc = sync.OnceValue(func() *redocAsset {
	sum := sha256.Sum256(redocJS)
	a := &redocAsset{version: hex.EncodeToString(sum[:8])}
	// URLs are relative, so the page also works behind a proxy that adds
	// a path prefix: from /docs, docs/x is /docs/x and openapi.yaml is
	// /openapi.yaml.
	a.page = fmt.Appendf(nil, `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>p2http API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<noscript>This page needs JavaScript. The contract itself is at <a href="openapi.yaml">openapi.yaml</a>.</noscript>
<redoc spec-url="openapi.yaml"></redoc>
<script src="docs/redoc.standalone.js?v=%s"></script>
</body>
</html>
`, a.version)
	a.gzipped = sync.OnceValue(func() []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // the level is valid
		zw.Write(redocJS)
		zw.Close()
		return b.Bytes()
	})
	return a
})

// docsRoutes serves the API documentation: GET /docs renders openapi.yaml
// (served at /openapi.yaml) with the embedded Redoc. Like /openapi.yaml it
// needs no token.
func (s *Server) docsRoutes(r chi.Router) {
	r.Get("/docs", s.handleDocs)
	r.Get("/docs/", s.handleDocsSlash)
	r.Get("/docs/redoc.standalone.js", s.handleRedocJS)
}

// handleDocs serves the page, which loads the bundle and points it at
// /openapi.yaml.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // the page names the current bundle
	page := redoc().page
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.Write(page)
}

// handleDocsSlash sends /docs/ to /docs, by a relative reference that a
// path prefix added by a proxy does not break.
func (s *Server) handleDocsSlash(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Location", "../docs")
	w.WriteHeader(http.StatusMovedPermanently)
}

// handleRedocJS serves the bundle, gzipped when the client accepts it.
// http.ServeContent answers HEAD, If-None-Match and Range.
func (s *Server) handleRedocJS(w http.ResponseWriter, r *http.Request) {
	a := redoc()
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	body, etag := redocJS, a.version
	if acceptsGzip(r) {
		body, etag = a.gzipped(), a.version+"-gzip"
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding allows gzip: named, or
// matched by *, with a non-zero q.
func acceptsGzip(r *http.Request) bool {
	gz, star := -1, -1 // -1 not named, 0 refused (q=0), 1 accepted
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			ok := 1
			for _, p := range strings.Split(params, ";") {
				if name, val, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(name, "q") {
					if q, err := strconv.ParseFloat(val, 64); err != nil || q <= 0 {
						ok = 0
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gz = ok
			case "*":
				star = ok
			}
		}
	}
	if gz >= 0 {
		return gz == 1
	}
	return star == 1
}
