package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
)

// walkStep is one command of the README's curl walk-through and what the
// README shows it prints: the lines after it that start with "# -> ".
type walkStep struct {
	command string // continuation lines included
	expect  []string
}

// readmeWalkThrough reads the commands of the README's section "Try it
// with curl": every line of its ```sh blocks that is neither blank nor a
// comment, joined with the lines a trailing backslash continues it on.
func readmeWalkThrough(t *testing.T) []walkStep {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Try it with curl\n")
	if !ok {
		t.Fatal("README.md has no section \"## Try it with curl\"")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	blocks := regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(section, -1)
	if len(blocks) == 0 {
		t.Fatal("the curl walk-through of README.md has no ```sh block")
	}
	var steps []walkStep
	continued := false
	for _, b := range blocks {
		for _, line := range strings.Split(b[1], "\n") {
			switch {
			case continued:
				steps[len(steps)-1].command += "\n" + line
			case strings.HasPrefix(line, "# -> "):
				if len(steps) == 0 {
					t.Fatalf("README.md shows %q before any command", line)
				}
				steps[len(steps)-1].expect = append(steps[len(steps)-1].expect, strings.TrimPrefix(line, "# -> "))
				continue
			case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
				continue
			default:
				steps = append(steps, walkStep{command: line})
			}
			continued = strings.HasSuffix(line, "\\")
		}
	}
	return steps
}

// TestREADMECurlWalkThrough runs the README's curl walk-through, read from
// the file, with sh and curl against p2http on SQLite in dev mode (as make
// run starts it), and holds what it prints to what the README shows: each
// status exactly, each JSON answer by its fields and, but for the node,
// the secret and the times, their values. The look-up is then run again
// for a node holding + and /, which only a URL-encoded query finds.
func TestREADMECurlWalkThrough(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's walk-through needs %s: %v", tool, err)
		}
	}
	steps := readmeWalkThrough(t)
	var script strings.Builder
	var expect []string
	var lookup *walkStep
	curls := 0
	for i, s := range steps {
		if strings.Contains(s.command, "curl ") {
			curls++
			if !strings.Contains(s.command, `-w '%{http_code}\n'`) {
				t.Errorf("this call of the README does not show its status (-w '%%{http_code}\\n'):\n%s", s.command)
			}
			if !strings.Contains(s.command, "localhost:8080") {
				t.Errorf("this call of the README does not call localhost:8080, where make run listens:\n%s", s.command)
			}
		}
		if strings.Contains(s.command, "/v1/registration") {
			lookup = &steps[i]
		}
		script.WriteString(s.command + "\n")
		expect = append(expect, s.expect...)
	}
	if curls < 4 || lookup == nil {
		t.Fatalf("the walk-through has %d curl calls, look-up %v: want register, push, look-up and unregister", curls, lookup != nil)
	}

	path := filepath.Join(t.TempDir(), "p2.db")
	// A registration whose node holds + and /, for the look-up.
	plusNode := "Ab+cD/eF+gH1"
	seed(t, "sqlite:"+path, p2http.Registration{Service: p2http.FCM, Device: p2http.DeviceHash("bob@example.org", "phone"),
		Domain: "example.org", Token: "fcm-token-bob", Node: plusNode, UpdatedAt: time.Now()})
	base, _ := start(t, map[string]string{"P2_DEV": "1", "P2_LISTEN": "127.0.0.1:0", "P2_DATABASE_URL": "sqlite:" + path})
	port := base[strings.LastIndex(base, ":")+1:]
	sh := func(script string) []string {
		t.Helper()
		out, err := exec.Command("sh", "-e", "-c", strings.ReplaceAll(script, "localhost:8080", "localhost:"+port)).Output()
		if err != nil {
			t.Fatalf("sh: %v\n%s\nthe script:\n%s", err, out, script)
		}
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}
	compareOutput(t, "the walk-through", sh(script.String()), expect)
	compareOutput(t, "the look-up of node "+plusNode, sh("node='"+plusNode+"'\n"+lookup.command), lookup.expect)
}

// walkVaries are the fields whose values differ from one run to the next,
// or between the walk-through's node (pushed once) and the look-up of a
// node never pushed.
var walkVaries = []string{"node", "secret", "created_at", "updated_at", "last_push_at", "push_count", "last_push_outcome"}

// compareOutput holds the lines a run printed to those the README shows.
func compareOutput(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s printed %d lines, the README shows %d:\n%s\nREADME:\n%s", what, len(got), len(want),
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(want[i], "{") {
			if got[i] != want[i] {
				t.Errorf("%s: line %d is %q, the README shows %q", what, i+1, got[i], want[i])
			}
			continue
		}
		var g, w map[string]any
		if err := json.Unmarshal([]byte(want[i]), &w); err != nil {
			t.Fatalf("the README shows an answer that is not JSON: %q: %v", want[i], err)
		}
		if err := json.Unmarshal([]byte(got[i]), &g); err != nil {
			t.Errorf("%s: line %d is not JSON: %q", what, i+1, got[i])
			continue
		}
		if gk, wk := slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w)); !slices.Equal(gk, wk) {
			t.Errorf("%s: line %d has the fields %q, the README shows %q (if the answer changed, show the new one in the README)\n%s", what, i+1, gk, wk, got[i])
			continue
		}
		for k, v := range w {
			if !slices.Contains(walkVaries, k) && !equalJSON(g[k], v) {
				t.Errorf("%s: line %d: %s is %v, the README shows %v", what, i+1, k, g[k], v)
			}
		}
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
