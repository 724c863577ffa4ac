package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process: p2http, p2xmpp or Prosody, optionally pinned to
// CPUs with taskset (which execs the program, so the PID is the program's).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // file holding its stdout and stderr
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

// startProc starts bin with args and env (added to PATH and HOME only),
// pinned to cpus unless that is empty, writing its output to logPath.
func startProc(name, bin string, args []string, env map[string]string, cpus, logPath string) (*proc, error) {
	argv := append([]string{bin}, args...)
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group; killed when p2bench dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 20 s, then kills the process group.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains reports whether the process's output holds s.
func (p *proc) logContains(s string) bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte(s))
}

// statusKiB reads a "VmXXX:  N kB" line of /proc/PID/status.
func (p *proc) statusKiB(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s in /proc/%d/status", p.name, field, p.pid())
}

// peakRSS is the process's peak resident set size (VmHWM) in MiB, since it
// started or since the last resetPeakRSS.
func (p *proc) peakRSS() float64 {
	kib, err := p.statusKiB("VmHWM")
	if err != nil {
		return 0
	}
	return float64(kib) / 1024
}

// rss is the process's resident set size now (VmRSS) in MiB.
func (p *proc) rss() float64 {
	kib, err := p.statusKiB("VmRSS")
	if err != nil {
		return 0
	}
	return float64(kib) / 1024
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux: "5" to
// /proc/PID/clear_refs).
func (p *proc) resetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid()), []byte("5"), 0)
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat; 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the CPU time (user plus system) the process has used so far.
func (p *proc) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// waitHTTP waits until GET url answers 200, failing early when the process
// exits.
func (p *proc) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited during start-up: %v\n%s", p.name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %v: %v\n%s", p.name, timeout, err, p.logTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the process's output holds s.
func (p *proc) waitLog(ctx context.Context, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !p.logContains(s) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not log %q within %v:\n%s", p.name, s, timeout, p.logTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited during start-up: %v\n%s", p.name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s not accepting after %v\n%s", p.name, addr, timeout, p.logTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// profileSnapshot saves a snapshot profile (heap, goroutine) of a binary
// built with the pprof overlay to path.
func profileSnapshot(pprofAddr, kind, path string) error {
	res, err := http.Get("http://" + pprofAddr + "/debug/pprof/" + kind)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return errors.New("pprof: " + res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, res.Body)
	return errors.Join(err, f.Close())
}

// profileCPU fetches a CPU profile of d from a binary built with the pprof
// overlay (see build.go) and writes it to path; it returns at once.
func profileCPU(pprofAddr string, d time.Duration, path string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, max(1, int(d.Seconds())))
		res, err := http.Get(url)
		if err != nil {
			errc <- err
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			errc <- errors.New("pprof: " + res.Status)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			errc <- err
			return
		}
		_, err = io.Copy(f, res.Body)
		errc <- errors.Join(err, f.Close())
	}()
	return errc
}
