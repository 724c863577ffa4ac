package testutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run runs the program bin with args in dir ("" for the test's), with env
// as its whole environment besides PATH, and returns what it wrote to
// standard output and standard error and its exit code. A program that
// cannot be started fails the test.
func Run(t testing.TB, bin, dir string, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s: %v", bin, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// JSONLines reads text as one JSON object a line, and returns them; a line
// that is not one fails the test, named with what.
func JSONLines(t testing.TB, what, text string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("%s: line %d is not JSON: %q", what, i+1, l)
		}
		recs = append(recs, rec)
	}
	return recs
}
