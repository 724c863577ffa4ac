package doctor_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/doctor"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/fake"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/stack"
)

// onStore runs f on the setup's SQLite database, as the service would
// write it, then closes it.
func (s *setup) onStore(f func(ctx context.Context, store *db.DB)) {
	s.t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, s.cfg.DatabaseURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer store.Close()
	f(ctx, store)
}

// register stores reg, failing the test on an error.
func (s *setup) register(reg p2http.Registration) {
	s.t.Helper()
	s.onStore(func(ctx context.Context, store *db.DB) {
		if _, _, err := store.Register(ctx, reg); err != nil {
			s.t.Fatal(err)
		}
	})
}

// record adds recs to their nodes' push history, as the relay does.
func (s *setup) record(recs ...p2http.PushRecord) {
	s.t.Helper()
	s.onStore(func(ctx context.Context, store *db.DB) {
		if err := store.RecordPushes(ctx, recs...); err != nil {
			s.t.Fatal(err)
		}
	})
}

// utc is how the doctor writes a time.
func utc(t time.Time) string { return t.UTC().Format(time.DateTime) + " UTC" }

// --node reports what became of the registration's pushes after the
// registration line, as the database has them: never pushed (a warning
// once a day old), delivered, failed with what to do about the reason, and
// a failure before the phone registered again.
func TestPushHistory(t *testing.T) {
	s := newSetup(t)
	const renewedToken = "cRenewedToken0123456789:APA91bFAKE-the-phone's-next-token"
	s.fcm.Known(renewedToken)
	now := time.Now().UTC().Truncate(time.Second)
	s.cfg.Now = func() time.Time { return now }
	created := now.Add(-3 * time.Hour)
	reg := p2http.Registration{Service: p2http.FCM, Device: strings.Repeat("cd", 20), Domain: "example.org",
		Token: phoneToken, Node: "node-of-bob", CreatedAt: created, UpdatedAt: created}
	s.register(reg)
	o := doctor.Options{Node: reg.Node}

	r := s.run(o)
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "registration", "default", checkup.OK, "an FCM registration of the domain example.org", "registered "+utc(created)+" (3 hours ago)")
	r.want(t, "push-history", "default", checkup.OK, "never pushed: the XMPP server has not pushed to this node since it registered",
		"not the history lagging", "cloud_notify", "mod_push")
	ids := ""
	for _, c := range r.report.Checks {
		ids += c.ID + " "
	}
	if !strings.Contains(ids, "registration push-history push-services ") {
		t.Errorf("checks in the order %s", ids)
	}
	if strings.Contains(r.check(t, "registration", "default").Message, "push") {
		t.Errorf("the registration line speaks of pushes: %s", r.out)
	}

	// Registered two days ago, never pushed: worth a look.
	s.cfg.Now = func() time.Time { return now.Add(45 * time.Hour) }
	r = s.run(o)
	if r.err != nil {
		t.Fatalf("a warning failed the run: %v", r.err)
	}
	c := r.want(t, "push-history", "default", checkup.Warn, "never pushed", "2 days ago", "within a day")
	if !strings.Contains(c.Fix, "cloud_notify") || !strings.Contains(c.Fix, "p2xmpp doctor") {
		t.Errorf("fix: %s", c.Fix)
	}
	s.cfg.Now = func() time.Time { return now }

	// Delivered.
	delivered := now.Add(-2 * time.Hour)
	s.record(p2http.PushRecord{Node: reg.Node, Pushes: 3, At: delivered, Outcome: p2http.PushDelivered})
	r = s.run(o)
	r.want(t, "push-history", "default", checkup.OK, "3 pushes since it first registered, "+utc(created),
		"the last at "+utc(delivered)+" (2 hours ago) was delivered: FCM accepted it", "up to an hour late", "GET /v1/registration")
	if c := r.check(t, "push-history", "default"); strings.Contains(c.Message, "last failure") {
		t.Errorf("a failure where none was: %s", c.Message)
	}

	// Failed over quota: a warning, with what to do about the quota.
	failed := now.Add(-time.Hour)
	s.record(p2http.PushRecord{Node: reg.Node, Pushes: 1, At: failed, Outcome: p2http.PushFailed, FailedAt: failed, FailureReason: "QUOTA_EXCEEDED"})
	r = s.run(o)
	if r.err != nil {
		t.Fatalf("a warning failed the run: %v", r.err)
	}
	c = r.want(t, "push-history", "default", checkup.Warn, "4 pushes", "the last at "+utc(failed)+" (1 hour ago) failed: QUOTA_EXCEEDED",
		"sending limit", "within about two minutes", "P2_COALESCE_WINDOW", "quota")
	if strings.Contains(c.Message, "registered again") {
		t.Errorf("the failure was with this token: %s", c.Message)
	}
	if !strings.Contains(r.out, "\nwarn  push-history [default]: 4 pushes since it first registered") {
		t.Errorf("text:\n%s", r.out)
	}

	// The phone registers again with a new token: the history stays, and
	// the failure was with the token before.
	renewed := now.Add(-30 * time.Minute)
	again := reg
	again.Token, again.UpdatedAt, again.CreatedAt = renewedToken, renewed, time.Time{}
	s.register(again)
	r = s.run(o)
	r.want(t, "registration", "default", checkup.OK, "registered "+utc(created), "again "+utc(renewed)+" (30 minutes ago)")
	r.want(t, "push-history", "default", checkup.Warn, "failed: QUOTA_EXCEEDED",
		"that was before the phone registered again at "+utc(renewed), "quota")

	// Delivered since: ok, naming the failure before.
	s.record(p2http.PushRecord{Node: reg.Node, Pushes: 1, At: now.Add(-time.Minute), Outcome: p2http.PushDelivered})
	r = s.run(o)
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	r.want(t, "push-history", "default", checkup.OK, "5 pushes", "was delivered", "the last failure at "+utc(failed)+" (1 hour ago): QUOTA_EXCEEDED",
		"before the phone registered again at "+utc(renewed))

	// A push that failed for its token alone, after which the phone
	// registered again: nothing to do but wait for the next push.
	other := p2http.Registration{Service: p2http.FCM, Device: strings.Repeat("ef", 20), Domain: "example.org",
		Token: phoneToken, Node: "node-of-carol", CreatedAt: created, UpdatedAt: created}
	s.register(other)
	s.record(p2http.PushRecord{Node: other.Node, Pushes: 1, At: failed, Outcome: p2http.PushFailed, FailedAt: failed,
		FailureReason: "INVALID_ARGUMENT: not a valid FCM registration token"})
	other.Token, other.UpdatedAt, other.CreatedAt = renewedToken, renewed, time.Time{}
	s.register(other)
	r = s.run(doctor.Options{Node: other.Node})
	c = r.want(t, "push-history", "default", checkup.Warn, "1 push since", "not a valid registration token",
		"that was before the phone registered again at "+utc(renewed))
	if !strings.HasPrefix(c.Fix, "probably nothing") {
		t.Errorf("fix: %s", c.Fix)
	}
}

// Each common failure reason — FCM's, Apple's, p2http's own — gets a fix of
// its own, naming what to change; an unknown one a generic fix.
func TestPushHistoryReasons(t *testing.T) {
	s := newSetup(t)
	now := time.Now().UTC().Truncate(time.Second)
	generic := "see p2http's log of the push"
	for i, c := range []struct {
		reason  string
		service p2http.Service
		words   []string
	}{
		{"QUOTA_EXCEEDED", p2http.FCM, []string{"quota", "P2_COALESCE_WINDOW"}},
		{"THIRD_PARTY_AUTH_ERROR", p2http.FCM, []string{"APNs authentication key", "Firebase console"}},
		{"SENDER_ID_MISMATCH", p2http.FCM, []string{"P2_FCM_CREDENTIALS", "google-services.json"}},
		{"INVALID_ARGUMENT", p2http.FCM, []string{"fcm-dry-run"}},
		{"INVALID_ARGUMENT: not a valid FCM registration token", p2http.FCM, []string{"registered again", "the token FCM gives it"}},
		{"UNREGISTERED", p2http.FCM, []string{"nothing", "registered again"}},
		{"UNAUTHENTICATED", p2http.FCM, []string{"fcm-auth", "revoked"}},
		{"invalid_grant", p2http.FCM, []string{"fcm-auth", "clock", "new key", "P2_FCM_CREDENTIALS"}},
		{"BadDeviceToken", p2http.APNs, []string{"P2_APNS_SANDBOX", "apns-environment"}},
		{"TopicDisallowed", p2http.APNs, []string{"P2_APNS_TOPIC", "bundle id"}},
		{"DeviceTokenNotForTopic", p2http.APNs, []string{"P2_APNS_TOPIC", "bundle id"}},
		{"ExpiredProviderToken", p2http.APNs, []string{"clock", "timedatectl"}},
		{"InvalidProviderToken", p2http.APNs, []string{"P2_APNS_KEY_ID", "P2_APNS_TEAM_ID"}},
		{p2http.ERATELIMIT, p2http.FCM, []string{"P2_LIMIT_PUSH_DOMAIN"}},
		{p2http.ETIMEOUT, p2http.FCM, []string{"proxy, firewall", "status page"}},
		{p2http.EUNAVAILABLE, p2http.APNs, []string{"P2_PUSH_DEADLINE", "status page"}},
		{"SomethingNew", p2http.APNs, []string{generic, "apns lines"}},
	} {
		t.Run(c.reason, func(t *testing.T) {
			token := phoneToken
			if c.service == p2http.APNs {
				token = strings.Repeat("ab", 32)
			}
			reg := p2http.Registration{Service: c.service, Device: fmt.Sprintf("%040x", i+1), Domain: "example.org",
				Token: token, Node: fmt.Sprintf("node-%d", i), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
			s.register(reg)
			at := now.Add(-time.Minute)
			s.record(p2http.PushRecord{Node: reg.Node, Pushes: 2, At: at, Outcome: p2http.PushFailed, FailedAt: at, FailureReason: c.reason})
			r := s.run(doctor.Options{Node: reg.Node})
			fix := r.want(t, "push-history", "default", checkup.Warn, "2 pushes", "failed: "+c.reason).Fix
			for _, w := range c.words {
				if !strings.Contains(fix, w) {
					t.Errorf("the fix for %s does not say %q: %s", c.reason, w, fix)
				}
			}
			if c.reason != "SomethingNew" && strings.HasPrefix(fix, generic) {
				t.Errorf("%s gets the generic fix: %s", c.reason, fix)
			}
		})
	}
}

// Through the real relay: a push that fails upstream (FCM over quota past
// the push deadline) is what doctor --node then reports, with what to do;
// after a delivered push, the delivery, and the failure before it.
func TestPushHistoryThroughRelay(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	store, err := db.Open(ctx, s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := keyring.New(s.cfg.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := fcm.New(ctx, fcm.Config{CredentialsJSON: s.fcm.Credentials, Endpoint: s.fcm.Endpoint(), HTTPClient: s.fcm.Client})
	if err != nil {
		t.Fatal(err)
	}
	st := stack.New(stack.Config{JID: "push.example.org", Store: store, Database: store, Keyring: keys,
		Senders:      apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: sender}, nil),
		PushDeadline: 500 * time.Millisecond, RetryBackoff: 50 * time.Millisecond,
		PushLogEvery: time.Hour, // written when the relay closes, as at a shutdown
		Logger:       slog.New(slog.DiscardHandler)})
	reg, err := st.Relay.Register(ctx, p2http.RegisterRequest{Service: p2http.FCM, Account: "alice@example.org", DeviceID: "phone-1", Token: phoneToken})
	if err != nil {
		t.Fatal(err)
	}
	quota := fake.FCMError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for the project")
	s.fcm.Always(&quota)
	push := p2http.PushRequest{Node: reg.Node, Secret: reg.Secret, Domain: "example.org", Important: true}
	if _, err := st.Relay.Push(ctx, push); p2http.ErrorCode(err) != p2http.EUNAVAILABLE && p2http.ErrorCode(err) != p2http.ETIMEOUT {
		t.Fatalf("push over quota: %v", err)
	}
	s.fcm.Always(nil)
	if err := st.Relay.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r := s.run(doctor.Options{Node: reg.Node})
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.out)
	}
	c := r.want(t, "push-history", "default", checkup.Warn, "1 push since it first registered", "failed: QUOTA_EXCEEDED", "sending limit")
	if !strings.Contains(c.Fix, "quota") {
		t.Errorf("fix: %s", c.Fix)
	}

	// Delivered, through a relay that writes each push at once.
	st = stack.New(stack.Config{JID: "push.example.org", Store: store, Database: store, Keyring: keys,
		Senders: apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: sender}, nil), Logger: slog.New(slog.DiscardHandler)})
	defer st.Relay.Close(ctx)
	if res, err := st.Relay.Push(ctx, push); err != nil || res.Coalesced {
		t.Fatalf("push: %+v, %v", res, err)
	}
	r = s.run(doctor.Options{Node: reg.Node})
	r.want(t, "push-history", "default", checkup.OK, "2 pushes", "was delivered: FCM accepted it", "the last failure at", "QUOTA_EXCEEDED")
	// FCM got the push over quota, retried, then the one delivered.
	if sent := s.fcm.Sent(); len(sent) < 3 || sent[len(sent)-1].Token != phoneToken {
		t.Errorf("FCM got %d pushes", len(sent))
	}

	// A service account whose key was revoked: the token endpoint's reason.
	revoked, err := fcm.New(ctx, fcm.Config{CredentialsJSON: s.fcm.RevokedCredentials(), Endpoint: s.fcm.Endpoint(), HTTPClient: s.fcm.Client})
	if err != nil {
		t.Fatal(err)
	}
	st = stack.New(stack.Config{JID: "push.example.org", Store: store, Database: store, Keyring: keys,
		Senders: apps.Given(map[p2http.Service]p2http.Sender{p2http.FCM: revoked}, nil), Logger: slog.New(slog.DiscardHandler)})
	defer st.Relay.Close(ctx)
	if _, err := st.Relay.Push(ctx, push); p2http.ErrorCode(err) != p2http.EUPSTREAM {
		t.Fatalf("push with a revoked key: %v", err)
	}
	r = s.run(doctor.Options{Node: reg.Node})
	c = r.want(t, "push-history", "default", checkup.Warn, "3 pushes", "failed: invalid_grant", "deleted or has expired")
	if !strings.Contains(c.Fix, "create a new key") {
		t.Errorf("fix: %s", c.Fix)
	}
}
