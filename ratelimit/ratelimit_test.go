package ratelimit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"0": {}, "off": {}, "100:1000": {100, 1000}, "2.5": {2.5, 25}, " 50:1 ": {50, 1},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "10:0", "10:x", "NaN", "Inf"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestBucketPerKey(t *testing.T) {
	now := time.Unix(1000, 0)
	k := New(Rate{PerSecond: 2, Burst: 3})
	k.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := k.Allow("a.example"); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := k.Allow("a.example")
	if ok || wait < 400*time.Millisecond || wait > 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused with ~500ms", ok, wait)
	}
	if ok, _ := k.Allow("b.example"); !ok {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := k.Allow("a.example"); !ok {
		t.Fatal("token not refilled after 500ms at 2/s")
	}
	var nilK *Keyed
	if ok, _ := nilK.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
	if New(Rate{}) != nil {
		t.Fatal("an off rate made a limiter")
	}
}

// A flood of distinct keys keeps the number of buckets bounded.
func TestBoundedKeys(t *testing.T) {
	k := New(Rate{PerSecond: 1, Burst: 1})
	k.maxKeys = 1000
	for i := range 10_000 {
		k.Allow(fmt.Sprintf("domain-%d.example", i))
	}
	if n := k.Len(); n > 1000 {
		t.Fatalf("%d buckets kept, limit 1000", n)
	}
}

// Peek takes nothing and creates nothing; Charge spends, into a debt of at
// most one burst, which the refill pays back before Peek lets through again.
func TestPeekAndCharge(t *testing.T) {
	now := time.Unix(1000, 0)
	k := New(Rate{PerSecond: 2, Burst: 3})
	k.now = func() time.Time { return now }
	for range 10 {
		if ok, _ := k.Peek("caller\x00example.org"); !ok {
			t.Fatal("Peek refused a key that was never charged")
		}
	}
	if n := k.Len(); n != 0 {
		t.Fatalf("Peek created %d buckets, want none", n)
	}
	for range 3 {
		k.Charge("caller\x00example.org")
	}
	ok, wait := k.Peek("caller\x00example.org")
	if ok || wait < 400*time.Millisecond || wait > 500*time.Millisecond {
		t.Fatalf("after a burst of charges: ok=%v wait=%v, want refused with ~500ms", ok, wait)
	}
	if ok, _ := k.Peek("caller\x00example.net"); !ok {
		t.Fatal("another key shares the spent bucket")
	}
	// Ten more charges: the debt stops at one burst (3 tokens), so one
	// token is back after (3+1)/2 s, not (10+1)/2 s.
	for range 10 {
		k.Charge("caller\x00example.org")
	}
	if ok, wait := k.Peek("caller\x00example.org"); ok || wait != 2*time.Second {
		t.Fatalf("in debt: ok=%v wait=%v, want refused for 2s", ok, wait)
	}
	now = now.Add(2 * time.Second)
	if ok, _ := k.Peek("caller\x00example.org"); !ok {
		t.Fatal("not let through once the debt was paid back")
	}
	var nilK *Keyed
	nilK.Charge("x")
	if ok, _ := nilK.Peek("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

// A flood of distinct keys through a full table pushes out the fresh
// buckets, not the spent one that holds a caller back.
func TestSweepKeepsSpentBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewMaxKeys(Rate{PerSecond: 1, Burst: 10}, 100)
	k.now = func() time.Time { return now }
	for range 20 {
		k.Charge("flooder") // ten tokens, then ten of debt
	}
	for i := range 10_000 {
		k.Charge(fmt.Sprintf("fresh-%d", i)) // one token of ten spent: nearly new
		if n := k.Len(); n > 100 {
			t.Fatalf("%d buckets kept after %d keys, limit 100", n, i+1)
		}
	}
	if ok, _ := k.Peek("flooder"); ok {
		t.Fatal("the spent bucket was forgotten while the table was swept")
	}
	// Full buckets are forgotten first: a second later every fresh bucket
	// is full again and a sweep keeps only what is still spent.
	now = now.Add(time.Second)
	for i := range 100 {
		k.Charge(fmt.Sprintf("later-%d", i))
	}
	if ok, _ := k.Peek("flooder"); ok {
		t.Fatal("the spent bucket was forgotten before full ones")
	}
}

// Long keys are kept as hashes: a table full of kilobyte keys holds none
// of their bytes, and distinct long keys still have distinct buckets.
func TestLongKeys(t *testing.T) {
	k := New(Rate{PerSecond: 1, Burst: 1})
	long := strings.Repeat("a", 1023)
	if ok, _ := k.Allow(long + ".example"); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := k.Allow(long + ".example"); ok {
		t.Fatal("a long key's bucket was not kept")
	}
	if ok, _ := k.Allow(long + ".example.net"); !ok {
		t.Fatal("two long keys share a bucket")
	}
}

func BenchmarkAllow(b *testing.B) {
	k := New(Rate{PerSecond: 1e9, Burst: 1e9})
	b.ReportAllocs()
	for b.Loop() {
		k.Allow("example.org")
	}
}
