package httpserver

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/testutil"
)

func TestListenerCaps(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := map[string]int{}
	ln := NewListener(inner, 3, 2, func(reason string) {
		mu.Lock()
		refused[reason]++
		mu.Unlock()
	})
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := ln.Addr().String()
	// take dials from and reports whether the listener handed the
	// connection out.
	take := func(from string) (client, server net.Conn) {
		client = testutil.DialFrom(t, from, addr)
		select {
		case server = <-accepted:
			return client, server
		case <-time.After(300 * time.Millisecond):
			if !!testutil.Held(client) {
				t.Fatalf("a connection from %s was neither handed out nor closed", from)
			}
			return client, nil
		}
	}
	var held []net.Conn // server side, in order
	for i, want := range []struct {
		from string
		ok   bool
	}{{"127.0.0.2", true}, {"127.0.0.2", true}, {"127.0.0.2", false}, {"127.0.0.3", true}, {"127.0.0.3", false}, {"127.0.0.4", false}} {
		_, s := take(want.from)
		if (s != nil) != want.ok {
			t.Fatalf("connection %d from %s: handed out %v, want %v", i, want.from, s != nil, want.ok)
		}
		if s != nil {
			held = append(held, s)
		}
	}
	mu.Lock()
	if refused[RefusedPerAddress] != 1 || refused[RefusedTotal] != 2 {
		t.Fatalf("refused %v, want one over the cap of 127.0.0.2 and two over the total", refused)
	}
	mu.Unlock()
	if n := ln.Open(); n != 3 {
		t.Fatalf("open %d, want 3", n)
	}

	// A closed connection frees its place, once however often it is
	// closed: 127.0.0.2 gets one back, and the total is full again.
	held[0].Close()
	held[0].Close()
	if n := ln.Open(); n != 2 {
		t.Fatalf("open %d after a close, want 2", n)
	}
	if _, s := take("127.0.0.2"); s == nil {
		t.Fatal("127.0.0.2 refused after one of its connections closed")
	}
	if _, s := take("127.0.0.5"); s != nil {
		t.Fatal("a connection over the total was handed out")
	}
}

func TestClientKey(t *testing.T) {
	for _, c := range []struct{ addr, key string }{
		{"192.0.2.7:443", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:443", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2::1]:80", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:80", "fe80::"},
	} {
		ap := netip.MustParseAddrPort(c.addr)
		if got := clientKey(net.TCPAddrFromAddrPort(ap)); got.String() != c.key {
			t.Errorf("%s counts against %s, want %s", c.addr, got, c.key)
		}
	}
}
