package httpserver

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The reasons a connection is refused, the values of Observer.ConnRefused.
const (
	// RefusedPerAddress: the client's address already holds its share.
	RefusedPerAddress = "per_address"
	// RefusedTotal: the server already holds as many connections as it may.
	RefusedTotal = "total"
)

// Listener caps the connections it hands out, in total and per client
// address, and closes the ones over a cap as soon as it accepts them: a
// reset (no FIN handshake, no TIME_WAIT here), no read, no write, no
// goroutine. A connection counts from its acceptance until it is closed.
//
// A client address is the IPv4 address, or the /64 prefix of an IPv6
// address: one IPv6 host usually holds a whole /64, so its single
// addresses would cost an attacker nothing.
//
// golang.org/x/net/netutil.LimitListener caps only the total, and does it
// by no longer accepting: over the cap, genuine clients would wait in the
// kernel's backlog behind the attacker's connections instead of being told
// at once, and nothing could be counted.
type Listener struct {
	net.Listener
	maxTotal, maxPerAddr int
	refused              func(reason string)

	mu      sync.Mutex
	open    int
	perAddr map[netip.Addr]int // only addresses holding connections: its size is at most maxTotal
}

// NewListener wraps ln so that it holds at most maxTotal connections, at
// most maxPerAddr of them from one client address. refused, when not nil,
// is told about each connection closed for being over a cap.
func NewListener(ln net.Listener, maxTotal, maxPerAddr int, refused func(reason string)) *Listener {
	return &Listener{Listener: ln, maxTotal: maxTotal, maxPerAddr: maxPerAddr, refused: refused,
		perAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps, closing those over
// them on the way.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		reason := l.admit(key)
		if reason == "" {
			return &conn{Conn: c, l: l, key: key}, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with a reset: nothing to flush, no TIME_WAIT
		}
		c.Close()
		if l.refused != nil {
			l.refused(reason)
		}
	}
}

// Open is the number of connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// admit counts a new connection from key, or says which cap it is over.
func (l *Listener) admit(key netip.Addr) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perAddr[key] >= l.maxPerAddr:
		return RefusedPerAddress
	case l.open >= l.maxTotal:
		return RefusedTotal
	}
	l.open++
	l.perAddr[key]++
	return ""
}

// release uncounts a closed connection from key.
func (l *Listener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.perAddr[key] - 1; n > 0 {
		l.perAddr[key] = n
	} else {
		delete(l.perAddr, key)
	}
}

// clientKey is the address a connection is counted against: the IPv4
// address, or the IPv6 /64. Anything else (no IP) shares one key.
func clientKey(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.Addr()
	}
	return ip
}

// conn is a connection counted by its Listener until it is closed.
type conn struct {
	net.Conn
	l      *Listener
	key    netip.Addr
	closed atomic.Bool
}

// Close closes the connection and frees its place, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return err
}

// CloseWrite shuts down the writing side, as net/http does before closing
// a connection whose request it refused, so that the client reads the
// answer rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
