package testutil

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// DialFrom connects to addr from the loopback address from (127.0.0.2 …),
// for tests of limits per client address, and closes the connection at
// cleanup. A connection the server resets at once may already fail here:
// it comes back nil.
func DialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Held reports whether the server keeps c open: a read that waits for
// 300 ms means kept; EOF, a reset or a nil c means closed.
func Held(c net.Conn) bool {
	if c == nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// FreeAddr returns a loopback host:port that nothing listens on at the
// moment: for a listener a test starts later, or an address that refuses
// connections.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
