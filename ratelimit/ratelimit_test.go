package ratelimit

import (
	"fmt"
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

func BenchmarkAllow(b *testing.B) {
	k := New(Rate{PerSecond: 1e9, Burst: 1e9})
	b.ReportAllocs()
	for b.Loop() {
		k.Allow("example.org")
	}
}
