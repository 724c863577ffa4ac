package api_test

import (
	"regexp"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db/dbtest"
)

// The request_id openapi.yaml shows is what p2http makes: 16 hex digits,
// in the problem document and the X-Request-ID header alike.
func TestRequestIDAsTheSpecShowsIt(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{})
	r := e.do("POST", "/v1/push", `{"node":"x"}`)
	expectProblem(t, r, 400, "invalid-request")
	made := r.Str("request_id")
	shape := regexp.MustCompile(`^[0-9a-f]{16}$`)
	if !shape.MatchString(made) || r.Header.Get("X-Request-ID") != made {
		t.Fatalf("request_id %q, X-Request-ID %q: want the same 16 hex digits", made, r.Header.Get("X-Request-ID"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(p2http.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	example, _ := doc.Components.Schemas["Problem"].Value.Properties["request_id"].Value.Example.(string)
	if !shape.MatchString(example) {
		t.Errorf("openapi.yaml's request_id example %q is not 16 hex digits, as p2http makes them (%q)", example, made)
	}
	for name, ref := range doc.Components.Responses {
		for _, mt := range ref.Value.Content {
			for ex, x := range mt.Examples {
				if m, ok := x.Value.Value.(map[string]any); ok && m["request_id"] != nil && !shape.MatchString(m["request_id"].(string)) {
					t.Errorf("response %s, example %s: request_id %v is not 16 hex digits", name, ex, m["request_id"])
				}
			}
		}
	}
}
