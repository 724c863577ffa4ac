package admin

import (
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour,
		"2160h": 90 * 24 * time.Hour, "1d30m": 24*time.Hour + 30*time.Minute,
	} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "5.5d", "90 d", "90days", "1d-", "x1d"} {
		if got, err := ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) = %v, want an error", in, got)
		}
	}
	if FormatAge(90*24*time.Hour) != "90d" || FormatAge(36*time.Hour) != "36h0m0s" {
		t.Error("FormatAge")
	}
}

// A retention is off, or an age of at least a day.
func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "off": 0, "OFF": 0, "180d": 180 * 24 * time.Hour} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"12h", "soon"} {
		if got, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v, want an error", in, got)
		}
	}
}
