package db

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/p2http/p2http"
)

// silentServer accepts TCP connections and never answers, like a frozen
// PostgreSQL or one behind a partition that drops packets after the
// handshake.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// lib/pq alone waits forever for a silent server's start-up answer when the
// URL has no connect_timeout, whatever the context says. The store gives up
// when the context ends, and bounds a call without a deadline.
func TestSilentPostgresDoesNotHang(t *testing.T) {
	addr := silentServer(t)
	d, err := openPool("postgres://postgres@" + addr + "/x?sslmode=disable") // no connect_timeout
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = d.Ping(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Ping with a 300 ms deadline took %v", took)
	}
	if p2http.ErrorCode(err) != p2http.EUNAVAILABLE {
		t.Errorf("Ping: %v, want EUNAVAILABLE", err)
	}

	// Canceled rather than timed out.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = d.Lookup(ctx, "node")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Lookup canceled after 200 ms took %v", took)
	}
	if p2http.ErrorCode(err) != p2http.EUNAVAILABLE {
		t.Errorf("Lookup: %v, want EUNAVAILABLE", err)
	}

	// No deadline at all (register has none): PostgresCallTimeout.
	start = time.Now()
	_, _, err = d.Register(context.Background(), p2http.Registration{
		Service: p2http.FCM, Device: p2http.DeviceHash("a@b", "c"), Domain: "b", Token: "t", Node: "n",
	})
	if took := time.Since(start); took > PostgresCallTimeout+2*time.Second {
		t.Errorf("Register without a deadline took %v", took)
	}
	if p2http.ErrorCode(err) != p2http.EUNAVAILABLE {
		t.Errorf("Register: %v, want EUNAVAILABLE", err)
	}
}

// A socket bound to a context stops blocking when that context ends, obeys
// the next context bound afterwards, and ignores the end of older ones.
func TestCtxConnFollowsBoundContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			peerc <- c
		}
	}()
	nc, err := ctxDialer{}.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-peerc
	defer peer.Close()
	c := nc.(*ctxConn)
	buf := make([]byte, 1)

	// Canceled while blocked in Read.
	ctx1, cancel1 := context.WithCancel(context.Background())
	c.bind(ctx1)
	time.AfterFunc(100*time.Millisecond, cancel1)
	start := time.Now()
	_, err = c.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Read after cancel: %v after %v", err, time.Since(start))
	}

	// A new binding lifts it; an older context ending later changes nothing.
	ctx2, cancel2 := context.WithCancel(context.Background())
	c.bind(ctx2)
	ctx3, cancel3 := context.WithCancel(context.Background())
	c.bind(ctx3)
	cancel2()
	defer cancel3()
	time.Sleep(50 * time.Millisecond)
	go peer.Write([]byte("x"))
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("Read under a live context: %v", err)
	}

	// A deadline of the bound context applies.
	ctx4, cancel4 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel4()
	c.bind(ctx4)
	start = time.Now()
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Read past the context's deadline: %v after %v", err, time.Since(start))
	}

	// lib/pq's own deadline (connect_timeout) applies too, and clearing it
	// leaves the context's.
	c.bind(context.Background())
	c.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past lib/pq's deadline: %v", err)
	}
	c.SetDeadline(time.Time{})
	go peer.Write([]byte("y"))
	if _, err := c.Read(buf); err != nil || buf[0] != 'y' {
		t.Fatalf("Read after clearing the deadline: %v %q", err, buf)
	}
}
