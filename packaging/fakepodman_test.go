package packaging

// The stand-in for podman that the container commands of docs/container.md
// run against (TestContainerDoc). Containers cannot run on the machines
// that run the tests (crun cannot set resource limits there), so `podman
// run` does the nearest equivalent: it exports the image's root file system
// once (podman create, podman export), copies it for the container, mounts
// the volumes and /proc into the copy, and starts the image's entrypoint in
// it with `unshare --root` (chroot) as the image's user, with the image's
// environment and working directory and the -e variables, and the
// /etc/hosts, /etc/hostname and /etc/resolv.conf podman writes. Building
// and the image commands go to the real podman.
//
// The test binary is the stand-in: TestMain calls fakePodman when it runs
// under the name podman (a link in the script's PATH). It keeps its state
// in $FAKE_PODMAN_STATE:
//
//	images/ID/root                 the exported root file system of an image
//	volumes/NAME/_data             a named volume; volumes/NAME/initialized once copied up
//	containers/NAME/config.json    what run decided (fakeContainer)
//	containers/NAME/root           the container's copy of the image
//	containers/NAME/{log,pid,exit} a detached container's output, process and exit status
//	containers/NAME/stopped        written by stop, which stopped it running
//
// Containers share the network namespace of the script that calls podman
// (the test gives the script one of its own), so a published port must be
// the container's own port.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// docImage is the image name the docs use; the stand-in runs $IMAGE
// (which make image built) in its place.
const docImage = "localhost/p2http"

// Environment of the stand-in, set by the test.
const (
	envFakeState = "FAKE_PODMAN_STATE" // the state directory
	envFakeReal  = "FAKE_PODMAN_REAL"  // the real podman
)

// fakeNote is what run says on standard error, so that the script's
// transcript says what ran.
const fakeNote = "podman run (the tests' stand-in): containers cannot run on this machine (crun cannot set rlimits); " +
	"running the nearest equivalent, the image's root file system with unshare and chroot:"

type fakePodmanState struct {
	dir, real, image string
}

// exitCode is an error that sets the stand-in's exit status without a
// message: the container's own status, passed on.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// fakePodman runs one podman command and returns its exit status.
func fakePodman(args []string) int {
	p := &fakePodmanState{dir: os.Getenv(envFakeState), real: os.Getenv(envFakeReal), image: os.Getenv("IMAGE")}
	err := p.main(args)
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintln(os.Stderr, "podman (the tests' stand-in, packaging/fakepodman_test.go):", err)
		return 125
	}
}

func (p *fakePodmanState) main(args []string) error {
	if p.dir == "" || p.real == "" || p.image == "" {
		return fmt.Errorf("needs %s, %s and IMAGE in its environment", envFakeState, envFakeReal)
	}
	if len(args) == 0 {
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "build", "images", "image", "rmi", "tag", "save", "version", "info":
		return p.realPodman(os.Stdout, append([]string{cmd}, args...)...)
	case "run":
		return p.run(args)
	case "__monitor":
		return p.monitor(args[0])
	case "logs":
		return p.logs(args)
	case "stop":
		return p.stop(args)
	case "rm":
		return p.rm(args)
	case "volume":
		return p.volume(args)
	}
	return fmt.Errorf("podman %s: not known to the stand-in; teach it, or keep the docs to run, logs, stop, rm, volume and the image commands", cmd)
}

func (p *fakePodmanState) realPodman(stdout io.Writer, args ...string) error {
	cmd := exec.Command(p.real, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return err
	}
	return nil
}

// fakeContainer is a container as run decided it.
type fakeContainer struct {
	Name        string
	Root        string // its copy of the image's root
	Argv        []string
	Env         []string
	UID, GID    int
	WorkDir     string
	Mounts      []fakeMount
	Remove      bool // --rm
	StopTimeout int  // seconds
}

type fakeMount struct {
	Source, Target string // Target inside the container
	ReadOnly       bool
	Volume         string // the named volume, if any
}

// command is the nearest equivalent of running the container: the process
// in the container's root, as its user, in namespaces of its own for the
// host name and IPC (the mounts are made before, in the script's mount
// namespace).
func (c *fakeContainer) command() *exec.Cmd {
	args := []string{"--uts", "--ipc", "--root=" + c.Root, "--wd=" + c.WorkDir,
		"--setuid=" + strconv.Itoa(c.UID), "--setgid=" + strconv.Itoa(c.GID), "--"}
	cmd := exec.Command("unshare", append(args, c.Argv...)...)
	cmd.Env = c.Env
	return cmd
}

func (p *fakePodmanState) containerDir(name string) string {
	return filepath.Join(p.dir, "containers", name)
}

func (p *fakePodmanState) run(args []string) error {
	fs := flag.NewFlagSet("podman run", flag.ContinueOnError)
	var (
		name, entrypoint, user, workdir, network string
		rm, detach, interactive, tty             bool
		stopTimeout                              = 10
		envs, envFiles, volumes, ports           multiFlag
	)
	fs.StringVar(&name, "name", "", "")
	fs.StringVar(&entrypoint, "entrypoint", "", "")
	fs.StringVar(&user, "user", "", "")
	fs.StringVar(&user, "u", "", "")
	fs.StringVar(&workdir, "workdir", "", "")
	fs.StringVar(&workdir, "w", "", "")
	fs.StringVar(&network, "network", "", "")
	fs.StringVar(&network, "net", "", "")
	fs.IntVar(&stopTimeout, "stop-timeout", 10, "")
	fs.BoolVar(&rm, "rm", false, "")
	fs.BoolVar(&detach, "d", false, "")
	fs.BoolVar(&detach, "detach", false, "")
	fs.BoolVar(&interactive, "i", false, "")
	fs.BoolVar(&tty, "t", false, "")
	fs.Var(&envs, "e", "")
	fs.Var(&envs, "env", "")
	fs.Var(&envFiles, "env-file", "")
	fs.Var(&volumes, "v", "")
	fs.Var(&volumes, "volume", "")
	fs.Var(&ports, "p", "")
	fs.Var(&ports, "publish", "")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("podman run: %v (the stand-in knows --name --entrypoint --user --workdir --network "+
			"--stop-timeout --rm -d -i -t -e --env-file -v -p)", err)
	}
	if fs.NArg() == 0 {
		return errors.New("podman run: no image")
	}
	ref, cmdArgs := fs.Arg(0), fs.Args()[1:]
	if network != "" && network != "host" {
		return fmt.Errorf("podman run --network %s: the stand-in's containers share the script's network namespace; only host is the same", network)
	}
	for _, pub := range ports {
		spec, _, _ := strings.Cut(pub, "/")
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || parts[len(parts)-1] != parts[len(parts)-2] {
			return fmt.Errorf("podman run -p %s: the stand-in's containers share the script's network namespace, "+
				"so the published port must be the container's port (HOST:N:N or N:N)", pub)
		}
	}

	img, err := p.exportImage(ref)
	if err != nil {
		return err
	}
	if name == "" {
		name = "c" + randomHex(6)
	}
	dir := p.containerDir(name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("podman run: the container name %q is already in use", name)
	}
	c := &fakeContainer{Name: name, Root: filepath.Join(dir, "root"), Remove: rm, StopTimeout: stopTimeout}

	// The environment: the image's, then --env-file, then -e, as podman
	// orders them; podman adds container and HOME.
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("container", "podman")
	set("HOME", "/")
	for _, kv := range img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	var given []string
	for _, f := range envFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("podman run --env-file: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				given = append(given, line)
			}
		}
	}
	for _, e := range append(given, envs...) {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			// -e NAME: the caller's value, if it has one.
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		set(k, v)
	}
	for _, k := range order {
		c.Env = append(c.Env, k+"="+env[k])
	}

	if user == "" {
		user = img.Config.User
	}
	uid, gid, err := numericUser(user)
	if err != nil {
		return err
	}
	c.UID, c.GID = uid, gid
	c.WorkDir = firstSet(workdir, img.Config.WorkingDir, "/")

	entry := img.Config.Entrypoint
	if entrypoint != "" {
		entry = []string{entrypoint}
		if strings.HasPrefix(entrypoint, "[") {
			if err := json.Unmarshal([]byte(entrypoint), &entry); err != nil {
				return fmt.Errorf("podman run --entrypoint %s: %v", entrypoint, err)
			}
		}
	} else if len(cmdArgs) == 0 {
		// The image's CMD, unless a new entrypoint dropped it.
		cmdArgs = img.Config.Cmd
	}
	c.Argv = append(slices.Clone(entry), cmdArgs...)
	if len(c.Argv) == 0 {
		return errors.New("podman run: no command: the image has no entrypoint and none was given")
	}

	// The container's root: a copy of the image's, which it may write.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", img.root, c.Root).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the image's root: %v\n%s", err, out)
	}
	if err := writeNetworkFiles(c.Root, name, network == "host"); err != nil {
		p.remove(c)
		return err
	}
	if c.Argv[0], err = lookPathIn(c.Root, c.Argv[0], env["PATH"]); err != nil {
		p.remove(c)
		return err
	}

	for _, v := range volumes {
		m, err := p.volumeMount(v, img.root, uid, gid)
		if err != nil {
			p.remove(c)
			return err
		}
		c.Mounts = append(c.Mounts, m)
	}
	if err := p.mountAll(c); err != nil {
		p.remove(c)
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s\n  %s\n", fakeNote, c.describe())

	if !detach {
		cmd := c.command()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		if rm {
			if rerr := p.remove(c); rerr != nil {
				return rerr
			}
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return err
	}

	// Detached: a monitor process, like podman's conmon, starts the
	// container, keeps its output and records its exit status.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	mon := &exec.Cmd{Path: self, Args: []string{"podman", "__monitor", name}, Env: os.Environ(),
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := mon.Start(); err != nil {
		return err
	}
	mon.Process.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
			break
		}
		if b, err := os.ReadFile(filepath.Join(dir, "exit")); err == nil {
			return fmt.Errorf("podman run -d: the container could not start: %s", b)
		}
		if time.Now().After(deadline) {
			return errors.New("podman run -d: the container did not start within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(name)
	return nil
}

// describe says what the container is, as the equivalent command line.
func (c *fakeContainer) describe() string {
	cmd := c.command()
	mounts := []string{"/proc"}
	for _, m := range c.Mounts {
		src := m.Source
		if m.Volume != "" {
			src = "volume " + m.Volume
		}
		mounts = append(mounts, m.Target+" = "+src)
	}
	return fmt.Sprintf("%s\n  (mounted: %s; network: the script's namespace; environment: %s)",
		strings.Join(cmd.Args, " "), strings.Join(mounts, ", "), strings.Join(envNames(c.Env), " "))
}

// envNames returns the names of env's variables: their values may be
// secrets.
func envNames(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		out = append(out, k)
	}
	return out
}

// monitor runs a detached container: its output goes to its log, its
// process id to pid, its exit status to exit.
func (p *fakePodmanState) monitor(name string) error {
	dir := p.containerDir(name)
	c, err := p.load(name)
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := c.command()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		os.WriteFile(filepath.Join(dir, "exit"), []byte(err.Error()), 0o600)
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "pid"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		return err
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return err
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if err := writeAtomic(filepath.Join(dir, "exit"), strconv.Itoa(code)); err != nil {
		return err
	}
	if c.Remove {
		return p.remove(c)
	}
	return nil
}

func (p *fakePodmanState) load(name string) (*fakeContainer, error) {
	b, err := os.ReadFile(filepath.Join(p.containerDir(name), "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no container with name or ID %q found", name)
	}
	if err != nil {
		return nil, err
	}
	var c fakeContainer
	return &c, json.Unmarshal(b, &c)
}

func (p *fakePodmanState) logs(args []string) error {
	if len(args) != 1 {
		return errors.New("podman logs: give one container")
	}
	if _, err := p.load(args[0]); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.containerDir(args[0]), "log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Stdout.Write(b)
	return nil
}

// running returns the process of a detached container that has not
// exited, or 0.
func (p *fakePodmanState) running(name string) int {
	dir := p.containerDir(name)
	if _, err := os.Stat(filepath.Join(dir, "exit")); err == nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

// stop sends SIGTERM, waits the stop timeout for the exit, then sends
// SIGKILL, as podman stop does.
func (p *fakePodmanState) stop(args []string) error {
	fs := flag.NewFlagSet("podman stop", flag.ContinueOnError)
	timeout := fs.Int("t", -1, "")
	fs.IntVar(timeout, "time", -1, "")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("podman stop: %v", err)
	}
	for _, name := range fs.Args() {
		c, err := p.load(name)
		if err != nil {
			return err
		}
		if pid := p.running(name); pid != 0 {
			wait := time.Duration(c.StopTimeout) * time.Second
			if *timeout >= 0 {
				wait = time.Duration(*timeout) * time.Second
			}
			writeAtomic(filepath.Join(p.containerDir(name), "stopped"), "SIGTERM")
			syscall.Kill(pid, syscall.SIGTERM)
			if !p.waitExit(name, wait) {
				writeAtomic(filepath.Join(p.containerDir(name), "stopped"), "SIGKILL after "+wait.String())
				syscall.Kill(pid, syscall.SIGKILL)
				p.waitExit(name, 5*time.Second)
			}
		}
		fmt.Println(name)
	}
	return nil
}

func (p *fakePodmanState) waitExit(name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(p.containerDir(name), "exit")); err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (p *fakePodmanState) rm(args []string) error {
	force := false
	var names []string
	for _, a := range args {
		switch a {
		case "-f", "--force":
			force = true
		default:
			names = append(names, a)
		}
	}
	for _, name := range names {
		c, err := p.load(name)
		if err != nil {
			return err
		}
		if pid := p.running(name); pid != 0 {
			if !force {
				return fmt.Errorf("podman rm %s: the container is running: stop it first, or rm -f", name)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			p.waitExit(name, 5*time.Second)
		}
		if err := p.remove(c); err != nil {
			return err
		}
		fmt.Println(name)
	}
	return nil
}

func (p *fakePodmanState) volume(args []string) error {
	if len(args) != 2 || (args[0] != "create" && args[0] != "rm") {
		return errors.New("podman volume: the stand-in knows create NAME and rm NAME")
	}
	dir := filepath.Join(p.dir, "volumes", args[1])
	if args[0] == "rm" {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Println(args[1])
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("podman volume create: volume with name %s already exists", args[1])
	}
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return err
	}
	fmt.Println(args[1])
	return nil
}

// volumeMount turns a -v SOURCE:TARGET[:OPTIONS] into a mount. A named
// volume is created when missing and, when still empty, filled with what
// the image holds at the target, with its owner and mode, as podman does
// at its first use.
func (p *fakePodmanState) volumeMount(spec, imageRoot string, uid, gid int) (fakeMount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || !strings.HasPrefix(parts[1], "/") {
		return fakeMount{}, fmt.Errorf("podman run -v %s: want SOURCE:/TARGET[:OPTIONS]", spec)
	}
	m := fakeMount{Source: parts[0], Target: parts[1]}
	chown := false
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				m.ReadOnly = true
			case "rw", "z", "Z": // SELinux labels: nothing to do here
			case "U":
				chown = true
			default:
				return fakeMount{}, fmt.Errorf("podman run -v %s: the stand-in does not know the option %s", spec, o)
			}
		}
	}
	if !strings.HasPrefix(m.Source, "/") {
		m.Volume = m.Source
		vol := filepath.Join(p.dir, "volumes", m.Volume)
		m.Source = filepath.Join(vol, "_data")
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return m, err
		}
		initialized := filepath.Join(vol, "initialized")
		if _, err := os.Stat(initialized); errors.Is(err, os.ErrNotExist) {
			if fi, err := os.Stat(filepath.Join(imageRoot, m.Target)); err == nil && fi.IsDir() {
				st := fi.Sys().(*syscall.Stat_t)
				if out, err := exec.Command("cp", "-a", filepath.Join(imageRoot, m.Target)+"/.", m.Source).CombinedOutput(); err != nil {
					return m, fmt.Errorf("copy up the image's %s into volume %s: %v\n%s", m.Target, m.Volume, err, out)
				}
				if err := os.Chown(m.Source, int(st.Uid), int(st.Gid)); err != nil {
					return m, err
				}
				if err := os.Chmod(m.Source, fi.Mode().Perm()); err != nil {
					return m, err
				}
			}
			if err := os.WriteFile(initialized, nil, 0o600); err != nil {
				return m, err
			}
		}
	} else if _, err := os.Stat(m.Source); err != nil {
		return m, fmt.Errorf("podman run -v %s: %v", spec, err)
	}
	if chown {
		if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), m.Source).CombinedOutput(); err != nil {
			return m, fmt.Errorf("podman run -v %s (U): %v\n%s", spec, err, out)
		}
	}
	return m, nil
}

// mountAll mounts /proc and the volumes into the container's root.
func (p *fakePodmanState) mountAll(c *fakeContainer) error {
	mount := func(args ...string) error {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mount %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	proc := filepath.Join(c.Root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := mount("-t", "proc", "proc", proc); err != nil {
		return err
	}
	for _, m := range c.Mounts {
		target := filepath.Join(c.Root, m.Target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := mount("--bind", m.Source, target); err != nil {
			return err
		}
		if m.ReadOnly {
			if err := mount("-o", "remount,bind,ro", target); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove unmounts what mountAll mounted and deletes the container. It
// deletes nothing while anything is still mounted under the root: that
// would delete a volume's files.
func (p *fakePodmanState) remove(c *fakeContainer) error {
	for _, m := range slices.Backward(append([]fakeMount{{Target: "/proc"}}, c.Mounts...)) {
		exec.Command("umount", filepath.Join(c.Root, m.Target)).Run()
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == c.Root || strings.HasPrefix(f[4], c.Root+"/")) {
			return fmt.Errorf("remove container %s: %s is still mounted", c.Name, f[4])
		}
	}
	return os.RemoveAll(p.containerDir(c.Name))
}

// fakeImage is an image's configuration (podman image inspect) and its
// exported root.
type fakeImage struct {
	ID     string `json:"Id"`
	Config struct {
		User       string
		Env        []string
		Entrypoint []string
		Cmd        []string
		WorkingDir string
	}
	root string
}

// exportImage resolves ref, the docs' image name standing for $IMAGE, and
// exports its root file system once.
func (p *fakePodmanState) exportImage(ref string) (*fakeImage, error) {
	if ref == docImage || strings.HasPrefix(ref, docImage+":") {
		ref = p.image + strings.TrimPrefix(ref, docImage)
	} else {
		return nil, fmt.Errorf("podman run %s: the stand-in runs only %s (the image make image built, here %s); nothing is pulled", ref, docImage, p.image)
	}
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		ref += ":latest"
	}
	var out bytes.Buffer
	if err := p.realPodman(&out, "image", "inspect", "--format", "json", ref); err != nil {
		return nil, fmt.Errorf("podman image inspect %s: %v", ref, err)
	}
	var imgs []fakeImage
	if err := json.Unmarshal(out.Bytes(), &imgs); err != nil || len(imgs) != 1 {
		return nil, fmt.Errorf("podman image inspect %s: %v\n%s", ref, err, out.Bytes())
	}
	img := &imgs[0]
	dir := filepath.Join(p.dir, "images", img.ID)
	img.root = filepath.Join(dir, "root")
	if _, err := os.Stat(img.root); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var id bytes.Buffer
	if err := p.realPodman(&id, "create", ref); err != nil {
		return nil, fmt.Errorf("podman create %s: %v", ref, err)
	}
	container := strings.TrimSpace(id.String())
	tarball := filepath.Join(dir, "root.tar")
	exportErr := p.realPodman(io.Discard, "export", "-o", tarball, container)
	rmErr := p.realPodman(io.Discard, "rm", "--volumes", container) // and its anonymous volume (VOLUME /data)
	if err := errors.Join(exportErr, rmErr); err != nil {
		return nil, fmt.Errorf("podman export: %v", err)
	}
	tmp := img.root + ".tmp"
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("tar", "--numeric-owner", "--same-owner", "-xpf", tarball, "-C", tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unpack the exported root: %v\n%s", err, out)
	}
	os.Remove(tarball)
	return img, os.Rename(tmp, img.root)
}

// writeNetworkFiles gives the container the /etc/hosts, /etc/hostname and
// /etc/resolv.conf that podman gives it: on the host's network the host's
// hosts file, else one naming localhost and the container.
func writeNetworkFiles(root, name string, hostNetwork bool) error {
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t%s\n", name)
	if hostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return err
		}
		hosts = string(b)
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil // none on the host: none in the container
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return err
	}
	for file, content := range map[string]string{"hosts": hosts, "hostname": name + "\n", "resolv.conf": string(resolv)} {
		if err := os.WriteFile(filepath.Join(root, "etc", file), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// lookPathIn finds name as the container would, in its PATH inside root.
func lookPathIn(root, name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(firstSet(path, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) {
		if fi, err := os.Stat(filepath.Join(root, dir, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, name), nil
		}
	}
	return "", fmt.Errorf("podman run: %s: executable file not found in $PATH (%s) of the container", name, path)
}

// numericUser parses a USER of the form UID[:GID]: the image has no
// /etc/passwd to resolve a name with.
func numericUser(user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if uid, err = strconv.Atoi(u); err != nil {
		return 0, 0, fmt.Errorf("user %q: the image has no /etc/passwd, only a numeric user works", user)
	}
	gid = uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("user %q: the image has no /etc/group, only a numeric group works", user)
		}
	}
	return uid, gid, nil
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// firstSet returns the first of values that is not empty.
func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// multiFlag is a flag that may be given many times.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
