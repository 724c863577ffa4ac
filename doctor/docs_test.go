package doctor_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/operations.md's table of doctor's checks lists every check the code
// reports, and no other.
func TestDocumentedChecks(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), "## Checking a configuration: `p2http doctor`")
	if start < 0 {
		t.Fatal("docs/operations.md has no section on p2http doctor")
	}
	section := string(doc[start:])
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	idRE := regexp.MustCompile(`(?:d\.(?:ok|warn|fail)\(|ID: |const id = )"([a-z-]+)"|id, what(?: =|:=) "([a-z-]+)"`)
	var reported []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range idRE.FindAllStringSubmatch(string(src), -1) {
			reported = append(reported, m[1]+m[2])
		}
	}
	slices.Sort(documented)
	slices.Sort(reported)
	documented, reported = slices.Compact(documented), slices.Compact(reported)
	if len(reported) < 15 || !slices.Equal(documented, reported) {
		t.Errorf("checks documented %q,\nchecks reported %q", documented, reported)
	}
}
