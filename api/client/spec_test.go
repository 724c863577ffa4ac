package client_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// specPath is the OpenAPI document the client is generated from.
const specPath = "../../openapi.yaml"

// loadSpec loads and validates the OpenAPI document.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate %s: %v", specPath, err)
	}
	return doc
}

func TestSpecValid(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if doc.Info.Title != "p2http" {
		t.Errorf("info.title = %q, want p2http", doc.Info.Title)
	}
	if doc.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Error("security scheme bearerAuth missing")
	}
}

func TestSpecOperations(t *testing.T) {
	doc := loadSpec(t)
	want := map[string]struct {
		method, path string
		statuses     []string
	}{
		"register":        {"POST", "/v1/register", []string{"200", "201", "400", "401", "404", "413", "415", "421", "429", "500", "503"}},
		"unregister":      {"POST", "/v1/unregister", []string{"204", "400", "401", "404", "413", "415", "421", "429", "500", "503"}},
		"push":            {"POST", "/v1/push", []string{"200", "400", "401", "403", "404", "410", "413", "415", "421", "429", "500", "502", "503", "504"}},
		"getInfo":         {"GET", "/v1/info", []string{"200", "421"}},
		"getRegistration": {"GET", "/v1/registration", []string{"200", "400", "401", "404", "421", "429", "500", "503"}},
		"healthz":         {"GET", "/healthz", []string{"200", "421"}},
		"readyz":          {"GET", "/readyz", []string{"200", "421", "503"}},
		"getOpenAPI":      {"GET", "/openapi.yaml", []string{"200", "421"}},
		"getMetrics":      {"GET", "/metrics", []string{"200", "401", "421", "429"}},
		"getDocs":         {"GET", "/docs", []string{"200", "421"}},
	}
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			w, ok := want[op.OperationID]
			if !ok {
				t.Errorf("%s %s: unexpected operationId %q", method, path, op.OperationID)
				continue
			}
			seen[op.OperationID] = true
			if method != w.method || path != w.path {
				t.Errorf("operation %s is %s %s, want %s %s", op.OperationID, method, path, w.method, w.path)
			}
			if got := op.Responses.Len(); got != len(w.statuses) {
				t.Errorf("operation %s declares %d responses, want %d", op.OperationID, got, len(w.statuses))
			}
			for _, status := range w.statuses {
				if op.Responses.Value(status) == nil {
					t.Errorf("operation %s: status %s not declared", op.OperationID, status)
				}
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("operationId %q missing", id)
		}
	}
}

// TestSpecRetryAfter checks that every 429, 502, 503 and 504 problem
// answer declares a required Retry-After header, and every 401 a
// WWW-Authenticate header.
func TestSpecRetryAfter(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				var header string
				switch status {
				case "429", "502", "503", "504":
					header = "Retry-After"
				case "401":
					header = "WWW-Authenticate"
				default:
					continue
				}
				if _, problem := ref.Value.Content["application/problem+json"]; !problem {
					continue // readyz's 503 is a Readiness document
				}
				h := ref.Value.Headers[header]
				if h == nil || !h.Value.Required {
					t.Errorf("%s %s %s: no required %s header", method, path, status, header)
				}
			}
		}
	}
}

// TestSpecNarrowingsTyped checks that every property an allOf narrows to
// an enum (a response's problem type and status) says its type as well:
// without it, generators such as openapi-typescript give the enum no type
// (`@enum {unknown}`).
func TestSpecNarrowingsTyped(t *testing.T) {
	doc := loadSpec(t)
	n := 0
	for name, ref := range doc.Components.Responses {
		for media, mt := range ref.Value.Content {
			if mt.Schema == nil || mt.Schema.Value == nil {
				continue
			}
			for _, part := range mt.Schema.Value.AllOf {
				if part.Ref != "" {
					continue
				}
				for prop, p := range part.Value.Properties {
					if len(p.Value.Enum) == 0 {
						continue
					}
					n++
					if p.Value.Type == nil || len(*p.Value.Type) == 0 {
						t.Errorf("response %s (%s): allOf narrows %s to an enum without a type", name, media, prop)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no allOf narrowing found in the responses")
	}
}
