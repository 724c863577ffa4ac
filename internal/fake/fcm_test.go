package fake_test

import (
	"context"
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
		`{"message":{"token":"tok"},"validate_only":true}`,
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
