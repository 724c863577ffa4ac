package benchfake

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, i := range []int{0, 7, 999_999, 123_456_789} {
		tok := Token(i)
		if len(tok) != 163 {
			t.Errorf("Token(%d) has %d characters, want 163", i, len(tok))
		}
		if n, ok := TokenIndex([]byte(tok)); !ok || n != i {
			t.Errorf("TokenIndex(Token(%d)) = %d, %v", i, n, ok)
		}
	}
	if _, ok := TokenIndex([]byte("not-a-bench-token")); ok {
		t.Error("TokenIndex accepted a foreign token")
	}
}

func TestFCMCountsAndLatency(t *testing.T) {
	f, err := NewFCM(10)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := f.Client()
	send := func(auth, body string) int {
		req, _ := http.NewRequest(http.MethodPost, f.SendURL(), bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", auth)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Errorf("HTTP/%d, want HTTP/2", res.ProtoMajor)
		}
		return res.StatusCode
	}
	msg := `{"message":{"token":"` + Token(3) + `","data":{"account":"x"}}}`
	if s := send("Bearer "+f.AccessToken, msg); s != 200 {
		t.Fatalf("status %d", s)
	}
	if s := send("Bearer wrong", msg); s != 401 {
		t.Errorf("wrong credentials: status %d, want 401", s)
	}
	f.SetLatency(50 * time.Millisecond)
	start := time.Now()
	send("Bearer "+f.AccessToken, msg)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v with a latency of 50 ms", d)
	}
	if f.Count(3) != 2 || f.Messages() != 2 || f.Rejected() != 1 || f.Unknown() != 0 {
		t.Errorf("count %d, messages %d, rejected %d, unknown %d; want 2, 2, 1, 0", f.Count(3), f.Messages(), f.Rejected(), f.Unknown())
	}
	f.ResetCounts()
	if f.Count(3) != 0 {
		t.Error("ResetCounts kept a count")
	}
}
