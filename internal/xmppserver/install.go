package xmppserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// useLock is held shared by every test binary that runs servers, from its
// first EnsureInstalled to its exit; scripts/xmpp-servers.sh takes it
// exclusively before it switches generations, so packages never change under
// a running test.
const useLock = "/tmp/p2http-xmppserver-use.lock"

// prosodyModules is the directory Debian's Prosody loads its own modules
// from, and prosody-modules installs into.
const prosodyModules = "/usr/lib/prosody/modules"

// cloudNotify returns the path of mod_cloud_notify under Prosody's module
// directory dir, in either layout: Prosody 13's core module
// (dir/mod_cloud_notify.lua) or prosody-modules' for Prosody 0.12
// (dir/mod_cloud_notify/mod_cloud_notify.lua).
func cloudNotify(dir string) (string, error) {
	candidates := []string{
		filepath.Join(dir, "mod_cloud_notify.lua"),
		filepath.Join(dir, "mod_cloud_notify", "mod_cloud_notify.lua"),
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mod_cloud_notify is in neither %s (Prosody 13's core) nor %s (prosody-modules for Prosody 0.12)",
		candidates[0], candidates[1])
}

// missing returns what of a server kind is not installed, or nil.
func missing(k Kind) []string {
	var need []string
	switch k {
	case Prosody:
		if !isExecutable(prosodyBin) || !isExecutable(prosodyctlBin) {
			need = append(need, "prosody")
		}
		if _, err := cloudNotify(prosodyModules); err != nil {
			need = append(need, err.Error())
		}
	case Ejabberd:
		if !isExecutable(ejabberdctlBin) {
			need = append(need, "ejabberd")
		}
	}
	return need
}

// EnsureInstalled makes sure Debian's packages for the given servers (both
// when none is named) are installed, and holds the lock that keeps
// scripts/xmpp-servers.sh from switching them while this test binary runs.
// When one is missing it runs scripts/xmpp-servers.sh, which installs the
// machine's own generation (as root, with the system services kept from
// starting, under a lock shared with other test binaries). It fails the test
// when that fails, or when a package is missing and the test does not run as
// root. StartProsody and StartEjabberd call it.
func EnsureInstalled(t testing.TB, kinds ...Kind) {
	t.Helper()
	if err := ensureInstalled(kinds...); err != nil {
		t.Fatalf("xmppserver: %v", err)
	}
}

var (
	useOnce sync.Once
	useErr  error
	// useFile keeps useLock's file open (and so locked): a closed or
	// collected *os.File would release the lock.
	useFile *os.File
)

func ensureInstalled(kinds ...Kind) error {
	if len(kinds) == 0 {
		kinds = []Kind{Prosody, Ejabberd}
	}
	var need []string
	for _, k := range kinds {
		need = append(need, missing(k)...)
	}
	if len(need) > 0 {
		if err := runInstallScript(need); err != nil {
			return err
		}
	}
	useOnce.Do(func() { useErr = holdUseLock() })
	return useErr
}

// runInstallScript runs scripts/xmpp-servers.sh ensure.
func runInstallScript(need []string) error {
	script := installScript()
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing: %s; installing needs root: run %s as root", strings.Join(need, "; "), script)
	}
	cmd := exec.Command("sh", script, "ensure")
	out, err := runTimeout(cmd, 15*time.Minute)
	if err != nil {
		return fmt.Errorf("%s ensure: %v\n%s", script, err, tail(string(out), 40))
	}
	for _, k := range []Kind{Prosody, Ejabberd} {
		if need := missing(k); len(need) > 0 {
			return errors.New("still missing after " + script + ": " + strings.Join(need, "; "))
		}
	}
	return nil
}

// installScript is scripts/xmpp-servers.sh in this source tree.
func installScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "xmpp-servers.sh")
}

// holdUseLock takes useLock shared for the rest of the process; the file
// stays open so that the kernel releases the lock when the process exits.
func holdUseLock() error {
	f, err := os.OpenFile(useLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("locking %s: %w", useLock, err)
	}
	useFile = f
	return nil
}

// version returns the installed version of Debian package pkg, or "".
func version(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
