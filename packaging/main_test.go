package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/testutil"
)

// buildDir holds the binaries the tests build once (see binaries); TestMain
// removes it.
var buildDir string

func TestMain(m *testing.M) {
	// The test binary doubles as the podman of the docs' container
	// commands (fakepodman_test.go), called through a link named podman.
	if filepath.Base(os.Args[0]) == "podman" {
		os.Exit(fakePodman(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "packaging-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// testVersion is the version the tests build into the binaries.
const testVersion = "v0.0.0-packaging-test"

// binaries builds p2http and p2xmpp as make release does (static,
// stripped, -trimpath) into a directory, once for all the tests, and
// returns the directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion,
			"-o", buildDir+"/", "./cmd/p2http", "./cmd/p2xmpp")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// process is a binary the test started.
type process struct {
	cmd  *exec.Cmd
	logs *testutil.LogBuffer
	done chan struct{}
	err  error // once done is closed
}

// start runs path with exactly env as its environment, logging to a
// buffer. At cleanup it is killed if still running, and its logs are shown
// when the test failed.
func start(t *testing.T, path string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(path, args...), logs: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", filepath.Base(path), p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit, which must be a clean one.
func (p *process) stop(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still runs %v after SIGTERM", p.cmd.Path, within)
	}
	if p.err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.cmd.Path, p.err)
	}
}

// running fails the test when the process has exited.
func (p *process) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited: %v", p.cmd.Path, p.err)
	default:
	}
}
