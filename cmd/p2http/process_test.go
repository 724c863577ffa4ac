package main

import (
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/fake"
)

// SIGTERM: stop accepting, finish the push in flight, send the push that
// coalescing still owes, close the database, exit 0.
func TestSIGTERMFinishesPushesInFlight(t *testing.T) {
	apns := fake.NewAPNs()
	defer apns.Close()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apns.Server.Certificate().Raw}))
	bin := startBinary(t, buildP2HTTP(t), map[string]string{
		"P2_DATABASE_URL": "sqlite:" + filepath.Join(dir, "p2.db"), "P2_DEV": "0",
		"P2_APNS_KEY": write("key.p8", apns.SigningKey), "P2_APNS_KEY_ID": apns.KeyID, "P2_APNS_TEAM_ID": apns.TeamID,
		"P2_APNS_TOPIC": apns.Topic, "P2_APNS_ENDPOINT": apns.Endpoint(), "SSL_CERT_FILE": ca,
		"P2_COALESCE_WINDOW": "5s",
	})
	p, a := register(bin.base, newPhone("apns", "alice@example.org", "dev"))
	if !a.ok() {
		t.Fatalf("register: %v", a)
	}
	apns.Next(fake.Answer{Status: 200, Delay: 2 * time.Second})
	inflight := make(chan answer, 1)
	go func() { inflight <- push(bin.base, p) }()
	time.Sleep(300 * time.Millisecond)
	if a := push(bin.base, p); a.status != http.StatusOK || a.body["coalesced"] != true {
		t.Fatalf("second push within the window: %v", a)
	}
	start := time.Now()
	if err := bin.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if a := <-inflight; a.status != http.StatusOK || a.body["delivered"] != true {
		t.Fatalf("push in flight at SIGTERM: %v", a)
	}
	exited, err := bin.wait(20 * time.Second)
	if !exited || err != nil {
		t.Fatalf("exit after SIGTERM: exited=%v err=%v\n%s", exited, err, bin.logs.String())
	}
	// The trailing push was owed for 5 s; shutdown sends it rather than
	// waiting out the window or dropping it.
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if n := len(apns.Requests()); n != 2 {
		t.Fatalf("APNs got %d pushes, want 2 (the one in flight and the owed trailing one)", n)
	}
	if a := call("healthz", "GET", bin.base+"/healthz", nil); a.err == nil {
		t.Fatalf("still answering after exit: %v", a)
	}
}
