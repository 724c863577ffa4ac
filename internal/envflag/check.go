package envflag

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// CheckDoc compares the table of settings in a Markdown document — the
// first table after the line heading, whose rows start with the variables
// they describe in backquotes, several separated by commas, then their
// default — with the declaration: every variable declared has a row, every
// variable in a row is declared, once, and the default column says what
// DocDefault says. The differences are returned joined, nil for none.
func (s *Set) CheckDoc(markdown, heading string) error {
	rows, err := docTable(markdown, heading)
	if err != nil {
		return err
	}
	declared := map[string]*Var{}
	for _, v := range s.Vars {
		declared[v.Name] = v
	}
	var errs []error
	seen := map[string]bool{}
	for _, r := range rows {
		for _, name := range r.names {
			v, ok := declared[name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: the docs list it, but %s does not declare it", name, s.Name))
			case seen[name]:
				errs = append(errs, fmt.Errorf("%s: the docs list it twice", name))
			case r.def != v.DocDefault():
				errs = append(errs, fmt.Errorf("%s: the docs give the default %s, the declaration %s", name, r.def, v.DocDefault()))
			}
			seen[name] = true
		}
		if r.meaning == "" {
			errs = append(errs, fmt.Errorf("%s: the docs give no meaning", strings.Join(r.names, ", ")))
		}
	}
	for _, v := range s.Vars {
		if !seen[v.Name] {
			errs = append(errs, fmt.Errorf("%s: %s declares it, but the docs do not list it", v.Name, s.Name))
		}
	}
	return errors.Join(errs...)
}

// docRow is one row of the docs' table of settings.
type docRow struct {
	names        []string
	def, meaning string
}

var docName = regexp.MustCompile("^`([A-Z][A-Z0-9_]*)`$")

// docTable reads the rows of the first table after the line heading.
func docTable(markdown, heading string) ([]docRow, error) {
	lines := strings.Split(markdown, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == heading {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("no line %q in the docs", heading)
	}
	var rows []docRow
	inTable := false
	for _, l := range lines[start+1:] {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if inTable {
				break
			}
			continue
		}
		if !inTable { // the header row, then the separator
			inTable = true
			continue
		}
		if strings.HasPrefix(l, "| ---") || strings.HasPrefix(l, "|---") {
			continue
		}
		cells := strings.SplitN(strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|"), " | ", 3)
		if len(cells) != 3 {
			return nil, fmt.Errorf("a row of the table has not three columns: %s", l)
		}
		r := docRow{def: strings.TrimSpace(cells[1]), meaning: strings.TrimSpace(cells[2])}
		for _, n := range strings.Split(cells[0], ",") {
			m := docName.FindStringSubmatch(strings.TrimSpace(n))
			if m == nil {
				return nil, fmt.Errorf("the first column of a row names no variable in backquotes: %s", l)
			}
			r.names = append(r.names, m[1])
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no table after %q in the docs", heading)
	}
	return rows, nil
}

// SourceNames returns the string literals of the Go files under root —
// test files and testdata left out — that match name entirely, each with
// the places it occurs: the names of the variables the code may read, for
// a test to check against a declaration.
func SourceNames(root string, name *regexp.Regexp) (map[string][]string, error) {
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := d.Name()
		if d.IsDir() {
			if path != root && (base == "testdata" || base == "vendor" || strings.HasPrefix(base, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
				out[s] = append(out[s], fset.Position(lit.Pos()).String())
			}
			return true
		})
		return nil
	})
	return out, err
}
