package retryafter

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {" 30 ", 30 * time.Second}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{"Thu, 26 Nov 2026 12:01:00 GMT", time.Minute},
		{"Thu, 26 Nov 2026 11:59:00 GMT", 0},
	} {
		if got := Parse(c.in, now); got != c.want {
			t.Errorf("Parse(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
