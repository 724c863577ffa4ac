package fake_test

import (
	"context"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/fake"
)

// A message p2http sends reads back as the fcm.Message it was made of; a
// body with anything more, or anything else, reads as the zero Message.
func TestFCMMessage(t *testing.T) {
	w := p2http.Wakeup{Token: "tok", Device: "ec164939a8485ee6b7f7871071a11c7bb18aead5", Important: true}
	if got := (fake.Request{Body: fcm.RequestBody(w)}).FCMMessage(); got != fcm.NewMessage(w) {
		t.Errorf("FCMMessage = %+v, want %+v", got, fcm.NewMessage(w))
	}
	for _, body := range []string{
		`{"message":{"token":"tok","notification":{"title":"hi"}}}`,
		`{"message":{"token":"tok","data":{"account":"a","body":"hi"}}}`,
		`{"message":{"token":"tok"},"dry_run":true}`,
		`{"message":{"token":"tok"}} {}`,
		`not json`,
	} {
		if got := (fake.Request{Body: []byte(body)}).FCMMessage(); got != (fcm.Message{}) {
			t.Errorf("FCMMessage of %s = %+v, want the zero Message", body, got)
		}
	}
}

// Sent and Tokens read what a Sender sent, in order.
func TestFCMSent(t *testing.T) {
	f := fake.NewFCM()
	defer f.Close()
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	wakeups := []p2http.Wakeup{{Token: "one", Device: "d1", Important: true}, {Token: "two", Device: "d2"}}
	for _, w := range wakeups {
		if err := s.Send(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	sent := f.Sent()
	if len(sent) != 2 || sent[0] != fcm.NewMessage(wakeups[0]) || sent[1] != fcm.NewMessage(wakeups[1]) {
		t.Errorf("Sent = %+v", sent)
	}
	if got := f.Tokens(); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("Tokens = %q", got)
	}
}

// A dry run reads as one (validate_only), is answered as FCM answers it and
// is listed by DryRuns, not Sent; a token the fake does not know is
// UNREGISTERED, to a dry run as to a send.
func TestFCMDryRunAndKnown(t *testing.T) {
	f := fake.NewFCM()
	defer f.Close()
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.Credentials, Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.SendDryRun(ctx, p2http.Wakeup{Token: "any", Device: "d"}); err != nil {
		t.Fatalf("dry run before Known: %v", err)
	}
	f.Known("issued")
	if err := s.SendDryRun(ctx, p2http.Wakeup{Token: "issued", Device: "d"}); err != nil {
		t.Fatalf("dry run to a known token: %v", err)
	}
	for _, send := range []func(context.Context, p2http.Wakeup) error{s.SendDryRun, s.Send} {
		err := send(ctx, p2http.Wakeup{Token: "never-issued", Device: "d"})
		if d, ok := err.(*p2http.DeadTokenError); !ok || d.Reason != "UNREGISTERED" {
			t.Errorf("unknown token: %v, want UNREGISTERED", err)
		}
	}
	if got := f.DryRuns(); len(got) != 3 || got[0].Token != "any" || got[1].Token != "issued" || got[2].Token != "never-issued" {
		t.Errorf("DryRuns = %+v", got)
	}
	if got := f.Tokens(); len(got) != 1 || got[0] != "never-issued" {
		t.Errorf("Tokens = %q, want only the one real send", got)
	}
	if !f.Requests()[0].FCMRequest().ValidateOnly {
		t.Error("the first request does not read as a dry run")
	}
}

// The token endpoint grants an access token for the account's own key only:
// a revoked key is refused (400 invalid_grant), and no message goes out.
func TestFCMTokenEndpointChecksKey(t *testing.T) {
	f := fake.NewFCM()
	defer f.Close()
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsJSON: f.RevokedCredentials(), Endpoint: f.Endpoint(), HTTPClient: f.Client})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Authenticate(context.Background())
	if p2http.ErrorCode(err) != p2http.EUPSTREAM || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("Authenticate with a revoked key: %v, want EUPSTREAM, HTTP 400", err)
	}
	if f.TokenFetches() != 0 || f.Messages() != 0 {
		t.Errorf("%d tokens handed out, %d messages received", f.TokenFetches(), f.Messages())
	}
}
