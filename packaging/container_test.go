package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerUser is the image's USER: numeric, not root.
const containerUser = "65532:65532"

// TestContainerfile checks what the image must be without building it:
// FROM scratch and nothing but COPY to fill it (no base image can be
// pulled, no RUN can execute), a numeric user that is not root, /data as
// the volume that the database URL points into, a listener on all
// addresses, and only variables p2http reads.
func TestContainerfile(t *testing.T) {
	instrs := parseContainerfile(t, filepath.Join("..", "Containerfile"))
	allowed := []string{"FROM", "ARG", "LABEL", "COPY", "USER", "WORKDIR", "VOLUME", "ENV", "EXPOSE", "ENTRYPOINT", "CMD", "STOPSIGNAL"}
	var froms []string
	env := map[string]string{}
	chowned := false
	for _, in := range instrs {
		if !slices.Contains(allowed, in.op) {
			t.Errorf("Containerfile:%d: %s: the image is FROM scratch and COPY only (nothing can RUN in it, nothing is fetched)", in.line, in.op)
		}
		switch in.op {
		case "FROM":
			froms = append(froms, in.args)
		case "COPY":
			if strings.Contains(in.args, "--chown="+containerUser+" ") {
				chowned = true
			}
			if strings.Contains(in.args, "--from") {
				t.Errorf("Containerfile:%d: COPY --from needs another image", in.line)
			}
		case "USER":
			if in.args != containerUser {
				t.Errorf("Containerfile:%d: USER %s, want %s (numeric: there is no /etc/passwd; not root)", in.line, in.args, containerUser)
			}
		case "VOLUME":
			if in.args != "/data" {
				t.Errorf("Containerfile:%d: VOLUME %s, want /data", in.line, in.args)
			}
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Errorf("Containerfile:%d: ENV %s: want NAME=value", in.line, kv)
				}
				env[k] = v
			}
		}
	}
	if len(froms) != 1 || froms[0] != "scratch" {
		t.Errorf("FROM %q, want exactly one FROM scratch", froms)
	}
	if !chowned {
		t.Errorf("no COPY --chown=%s: /data must belong to the image's user", containerUser)
	}
	if db := env["P2_DATABASE_URL"]; !strings.HasPrefix(db, "sqlite:/data/") {
		t.Errorf("ENV P2_DATABASE_URL=%s, want sqlite:/data/…, in the volume", db)
	}
	if l := env["P2_LISTEN"]; !strings.HasPrefix(l, "0.0.0.0:") {
		t.Errorf("ENV P2_LISTEN=%s, want 0.0.0.0:PORT: a published port reaches the container's network interface, not its loopback", l)
	}
	reads := programReads(t)
	for k := range env {
		if strings.HasPrefix(k, "P2") && !reads["p2http"][k] {
			t.Errorf("Containerfile: ENV %s, which p2http does not read", k)
		}
	}
}

type containerInstr struct {
	op, args string
	line     int
}

// parseContainerfile reads instructions, joining continued lines.
func parseContainerfile(t *testing.T, path string) []containerInstr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []containerInstr
	var cur string
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur == "" {
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur += s + " "
			continue
		}
		cur += trimmed
		op, args, _ := strings.Cut(cur, " ")
		out = append(out, containerInstr{strings.ToUpper(op), strings.Join(strings.Fields(args), " "), start})
		cur = ""
	}
	return out
}

// docSections returns the sh blocks of docs/container.md by the title of
// their ## section.
func docSections(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "container.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	title := ""
	block := regexp.MustCompile("(?s)```sh\n(.*?)```")
	for _, part := range regexp.MustCompile(`(?m)^## `).Split(string(b), -1)[1:] {
		title, _, _ = strings.Cut(part, "\n")
		for _, m := range block.FindAllStringSubmatch(part, -1) {
			sections[title] += m[1]
		}
	}
	return sections
}

// The sections whose commands the tests run; any other section with sh
// commands fails TestDocSections.
const (
	releaseSection   = "A release binary, with metrics"
	containerSection = "The container image"
)

// TestDocSections: every command of docs/container.md is run by a test.
func TestDocSections(t *testing.T) {
	sections := docSections(t)
	for title := range sections {
		if title != releaseSection && title != containerSection {
			t.Errorf("docs/container.md: section %q has sh commands that no test runs (container_test.go)", title)
		}
	}
	for _, title := range []string{releaseSection, containerSection} {
		if strings.TrimSpace(sections[title]) == "" {
			t.Errorf("docs/container.md: no sh commands in section %q, which the tests run", title)
		}
	}
}

// needRoot fails the test unless it runs as root: namespaces, mounts,
// chroot and podman's image store need it. CI runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the docs' commands in namespaces of their own, with mounts and chroot: run it as root (CI does)")
	}
	for _, tool := range []string{"unshare", "ip", "mount", "curl", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: scripts/test-deps.sh installs what the tests need", tool)
		}
	}
}

// runScript runs script with sh -ex in dir, in a network, PID and mount
// namespace of its own (loopback up), so that the ports it uses clash with
// nothing on the machine and every process it leaves ends with it. It
// fails the test when the script fails, and returns the transcript.
func runScript(t *testing.T, dir string, env []string, script string, timeout time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
		"--", "sh", "-c", `ip link set lo up && exec sh -ex "$0"`, path)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	t.Logf("the commands, as the doc has them, run in %s:\n%s", dir, out)
	if err != nil {
		t.Fatalf("the doc's commands failed: %v (transcript above)", err)
	}
	return string(out)
}

// testEnv is the test's environment without p2http's and p2xmpp's
// variables, which would change what the docs' commands do.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2_") && !strings.HasPrefix(kv, "P2XMPP_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestReleaseDoc runs the release section of docs/container.md in a
// directory that make release filled for this machine's architecture.
func TestReleaseDoc(t *testing.T) {
	needRoot(t)
	script := docSections(t)[releaseSection]
	if script == "" {
		t.Fatalf("docs/container.md has no sh commands in %q", releaseSection)
	}
	if runtime.GOARCH != "amd64" {
		script = strings.ReplaceAll(script, "-linux-amd64", "-linux-"+runtime.GOARCH)
		t.Logf("running the doc's commands with the %s files in place of the amd64 ones", runtime.GOARCH)
	}
	dist := filepath.Join(t.TempDir(), "dist")
	mk := exec.Command("make", "release", "DIST="+dist, "RELEASE_PLATFORMS=linux/"+runtime.GOARCH, "VERSION="+testVersion)
	mk.Dir = ".."
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	out := runScript(t, dist, testEnv(), script, 2*time.Minute)

	if !regexp.MustCompile(`(?m)^p2http_registrations\{service="fcm"\} 0$`).MatchString(out) {
		t.Errorf("the metrics listener's answer holds no p2http_registrations{service=\"fcm\"} 0")
	}
	for _, f := range []string{"p2.db", "p2.db.key"} {
		fi, err := os.Stat(filepath.Join(dist, f))
		if err != nil {
			t.Errorf("the release binary made no %s in its working directory: %v", f, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// TestContainerDoc builds the image with make image and runs the
// container section of docs/container.md. Containers cannot run here, so
// podman's run, logs, stop and rm are the stand-in of fakepodman_test.go:
// the image's exported root with unshare and chroot, as the image's user.
func TestContainerDoc(t *testing.T) {
	needRoot(t)
	real, err := exec.LookPath("podman")
	if err != nil {
		t.Fatal("podman is not installed: scripts/test-deps.sh installs it (make test runs it)")
	}
	script := docSections(t)[containerSection]
	if script == "" {
		t.Fatalf("docs/container.md has no sh commands in %q", containerSection)
	}
	t.Log("containers cannot run on this machine (crun cannot set rlimits): the doc's podman commands " +
		"run against a stand-in that runs the nearest equivalent, the image's exported root file system " +
		"with unshare and chroot as uid 65532 (fakepodman_test.go)")
	binaries(t) // every module the build needs is then in the module cache: the script has no network

	image := "localhost/p2http-test-" + randomHex(4)
	volumesBefore := podmanList(t, real, "volume", "ls", "--quiet")
	t.Cleanup(func() {
		// The stand-in's podman create and export must leave nothing
		// behind in podman's store.
		for _, v := range podmanList(t, real, "volume", "ls", "--quiet") {
			if !slices.Contains(volumesBefore, v) {
				t.Errorf("podman volume %s was left behind", v)
			}
		}
		if left := podmanList(t, real, "ps", "--all", "--quiet", "--filter", "ancestor="+image); len(left) > 0 {
			t.Errorf("podman containers %q of the image were left behind", left)
		}
		for _, tag := range []string{testVersion, "latest"} {
			ref := image + ":" + tag
			if exec.Command(real, "image", "exists", ref).Run() != nil {
				continue
			}
			if out, err := exec.Command(real, "rmi", ref).CombinedOutput(); err != nil {
				t.Errorf("podman rmi %s: %v\n%s", ref, err, out)
			}
		}
	})
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	shim := filepath.Join(tmp, "bin")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{state, shim} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(self, filepath.Join(shim, "podman")); err != nil {
		t.Fatal(err)
	}
	env := testEnv("PATH="+shim+":"+os.Getenv("PATH"), "IMAGE="+image, "IMAGE_CONTEXT="+filepath.Join(tmp, "context"),
		"VERSION="+testVersion, envFakeState+"="+state, envFakeReal+"="+real)
	out := runScript(t, "..", env, script, 5*time.Minute)

	if !strings.Contains(out, fakeNote) {
		t.Errorf("the transcript does not say that the stand-in ran the containers")
	}
	if !regexp.MustCompile(`(?m)^p2http ` + regexp.QuoteMeta(testVersion) + ` \(`).MatchString(out) {
		t.Errorf("podman run … version printed no p2http %s: the image holds another build", testVersion)
	}
	if !regexp.MustCompile(`(?m)^p2http_registrations\{service="fcm"\} 0$`).MatchString(out) {
		t.Errorf("the published metrics listener's answer holds no p2http_registrations{service=\"fcm\"} 0")
	}
	// No XMPP server in the script's network: p2xmpp runs on, not
	// connected.
	if !regexp.MustCompile(`(?m)^p2xmpp_connected 0$`).MatchString(out) {
		t.Errorf("p2xmpp's metrics listener's answer holds no p2xmpp_connected 0")
	}
	// What the programs log before they answer the doc's curl, and at a
	// graceful stop.
	for name, logged := range map[string][]string{
		"p2http": {"generated a new server key", "p2http listening", "stopped"},
		"p2xmpp": {"p2xmpp starting", "p2xmpp stopped"},
	} {
		dir := filepath.Join(state, "containers", name)
		logs, err := os.ReadFile(filepath.Join(dir, "log"))
		if err != nil {
			t.Errorf("container %s: %v", name, err)
			continue
		}
		for _, l := range logged {
			if !strings.Contains(string(logs), l) {
				t.Errorf("container %s logged no %q:\n%s", name, l, logs)
			}
		}
		stopped, _ := os.ReadFile(filepath.Join(dir, "stopped"))
		exit, _ := os.ReadFile(filepath.Join(dir, "exit"))
		if string(stopped) != "SIGTERM" || string(exit) != "0" {
			t.Errorf("container %s: stopped %q, exit status %q; want it running until podman stop's SIGTERM, then exit 0", name, stopped, exit)
		}
	}
	uid, gid := 65532, 65532
	data := filepath.Join(state, "volumes", "p2http-data", "_data")
	for _, f := range []string{".", "p2.db", "p2.db.key"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Errorf("volume p2http-data: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		want := os.FileMode(0o600)
		if f == "." {
			want = 0o700 | os.ModeDir
		}
		if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode() != want {
			t.Errorf("volume p2http-data: %s is %d:%d %v, want %d:%d %v (made by p2http as the image's user)",
				f, st.Uid, st.Gid, fi.Mode(), uid, gid, want)
		}
	}
}

// podmanList runs a podman command that lists names, one a line.
func podmanList(t *testing.T, podman string, args ...string) []string {
	t.Helper()
	out, err := exec.Command(podman, args...).Output()
	if err != nil {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}
