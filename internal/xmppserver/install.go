package xmppserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// installLock serialises installs between test binaries (and
// scripts/install-xmpp-servers.sh, which flocks the same file).
const installLock = "/tmp/p2http-xmppserver-install.lock"

// policyRCD, while present and exiting 101, keeps Debian's maintainer
// scripts from starting the system services on the default ports.
const policyRCD = "/usr/sbin/policy-rc.d"

// packages returns the Debian packages a server kind needs, and whether they
// are all installed.
func packages(k Kind) (pkgs []string, installed bool) {
	switch k {
	case Prosody:
		return []string{"prosody", "prosody-modules"},
			isExecutable(prosodyBin) && isExecutable(prosodyctlBin) &&
				exists("/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua")
	case Ejabberd:
		return []string{"ejabberd"}, isExecutable(ejabberdctlBin)
	}
	return nil, false
}

// EnsureInstalled installs Debian's packages for the given servers (both
// when none is named) unless they are installed already: apt-get update, then
// apt-get install --no-install-recommends, with a temporary policy-rc.d so
// that the system services do not start, under a lock file so that test
// binaries running at once do not collide. It fails the test when a package
// is missing and the test does not run as root.
// StartProsody and StartEjabberd call it.
func EnsureInstalled(t testing.TB, kinds ...Kind) {
	t.Helper()
	if err := ensureInstalled(kinds...); err != nil {
		t.Fatalf("xmppserver: %v", err)
	}
}

func ensureInstalled(kinds ...Kind) error {
	if len(kinds) == 0 {
		kinds = []Kind{Prosody, Ejabberd}
	}
	missing := func() []string {
		var need []string
		for _, k := range kinds {
			if pkgs, ok := packages(k); !ok {
				need = append(need, pkgs...)
			}
		}
		return need
	}
	if len(missing()) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("packages %v are missing and installing them needs root: run scripts/install-xmpp-servers.sh as root", missing())
	}

	lock, err := os.OpenFile(installLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", installLock, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	need := missing() // another process may have installed them meanwhile
	if len(need) == 0 {
		return nil
	}
	if !exists(policyRCD) {
		if err := os.WriteFile(policyRCD, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policyRCD)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	steps := [][]string{
		{"apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"},
		append([]string{"apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "--no-install-recommends"}, need...),
	}
	for _, args := range steps {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		out, err := runTimeout(cmd, 10*time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 40))
		}
	}
	stopSystemServices()
	if need := missing(); len(need) > 0 {
		return errors.New("still missing after apt-get install: " + strings.Join(need, " "))
	}
	return nil
}

// stopSystemServices stops a system Prosody or ejabberd that the install
// started despite policy-rc.d.
func stopSystemServices() {
	for _, pidfile := range []string{"/run/prosody/prosody.pid", "/run/ejabberd/ejabberd.pid"} {
		if pid := readPID(pidfile); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
