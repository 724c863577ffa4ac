package main

import "testing"

// A target is judged on the value measured, and its line never shows a
// value rounded across the limit.
func TestTargetJudgesTheMeasuredValue(t *testing.T) {
	for _, c := range []struct {
		t    target
		line string
	}{
		{target{Name: "register_postgres", Value: 0.4958, Op: ">=", Limit: 0.5},
			"scenario=register_postgres value=0.4958 target=>=0.5 ok=false"},
		{target{Name: "register_postgres", Value: 0.5049, Op: ">=", Limit: 0.5},
			"scenario=register_postgres value=0.50 target=>=0.5 ok=true"},
		{target{Name: "register_sqlite", Value: 0.6812, Op: ">=", Limit: 0.5},
			"scenario=register_sqlite value=0.68 target=>=0.5 ok=true"},
		{target{Name: "push_added_p99_ms", Value: 2.004, Op: "<=", Limit: 2},
			"scenario=push_added_p99_ms value=2.0040 target=<=2 ok=false"},
		{target{Name: "scale_1m_p99", Value: 1.1951, Op: "<=", Limit: 1.2},
			"scenario=scale_1m_p99 value=1.20 target=<=1.2 ok=true"},
		{target{Name: "burst", Value: 0, Op: "=", Limit: 0},
			"scenario=burst value=0 target==0 ok=true"},
	} {
		if got := c.t.check(true).line(); got != c.line {
			t.Errorf("got  %s\nwant %s", got, c.line)
		}
	}
	if got := (target{Name: "push_xmpp", Value: 0.9, Op: ">=", Limit: 0.7}).check(false).line(); got != "scenario=push_xmpp value=0.90 target=>=0.7 ok=false" {
		t.Errorf("a run with errors: %s", got)
	}
}
