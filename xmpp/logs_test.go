package xmpp_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/p2http/p2http/internal/testutil"
	"github.com/p2http/p2http/xmpp"
)

// The line per answered request: a result at debug, so that at the default
// info level a push writes none (one per stanza would flood the journal, and
// the metrics count them); an error at info, a wait error at warn.
func TestAnsweredLineLevels(t *testing.T) {
	stub, c := newStatusAPI(t)
	const pj = "application/problem+json"
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			logs := &testutil.LogBuffer{}
			comp, err := xmpp.New(xmpp.Config{JID: compJID, Registrar: c, Pusher: c, Describer: c,
				Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))})
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				status      int
				contentType string
				body        string
				outcome     string
				debug       bool     // logged at debug only
				wants       []string // in the line
			}{
				{200, "text/plain", "ok", "result", true, []string{"level=DEBUG", "request=publish"}},
				{403, pj, problem(403, "forbidden", "the secret does not match"), "auth/forbidden", false,
					[]string{"level=INFO", "request=publish", "http_status=403", "request_id=req-1", "reason="}},
				{503, pj, problem(503, "unavailable", "FCM is unavailable"), "wait/recipient-unavailable", false,
					[]string{"level=WARN", "request=publish", "http_status=503", "request_id=req-1", "reason="}},
			} {
				stub.status, stub.contentType, stub.body = tt.status, tt.contentType, tt.body
				before := len(logs.String())
				st := parseStanza(t, prosodyPublish(prosodyID, "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", "secret words"))
				if comp.Handle(context.Background(), st) == nil {
					t.Fatalf("%d: no reply", tt.status)
				}
				var lines []string
				for _, l := range strings.Split(logs.String()[before:], "\n") {
					if strings.Contains(l, "msg=answered") {
						lines = append(lines, l)
					}
				}
				switch {
				case tt.debug && level > slog.LevelDebug && len(lines) != 0:
					t.Fatalf("%d answered %s: logged at %v:\n%s", tt.status, tt.outcome, level, strings.Join(lines, "\n"))
				case tt.debug && level > slog.LevelDebug:
					continue
				case len(lines) != 1:
					t.Fatalf("%d answered %s: %d lines, want one:\n%s", tt.status, tt.outcome, len(lines), logs.String())
				}
				for _, want := range append(tt.wants, "outcome="+tt.outcome, "id="+prosodyID, "took=") {
					if !strings.Contains(lines[0], want) {
						t.Errorf("%d: the line lacks %s:\n%s", tt.status, want, lines[0])
					}
				}
			}
			testutil.AssertNoLeaks(t, "p2xmpp's log", logs.String(), "KK4+H5WMfpRG/2zCbuKq6wpX", "secret words")
		})
	}
}
