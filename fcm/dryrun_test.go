package fcm_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/fcm"
)

// SendDryRun posts the message Send would, with validate_only set, and
// maps FCM's answer as Send does; Send itself never sets validate_only.
func TestSendDryRun(t *testing.T) {
	f := newFake(t)
	s := f.sender(t)
	ctx := context.Background()
	if err := s.SendDryRun(ctx, wakeup(true)); err != nil {
		t.Fatalf("SendDryRun: %v", err)
	}
	if err := s.Send(ctx, wakeup(true)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := f.recorded()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	var dry, real map[string]any
	if err := json.Unmarshal(got[0].body, &dry); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got[1].body, &real); err != nil {
		t.Fatal(err)
	}
	if dry["validate_only"] != true {
		t.Errorf("dry run body %s has no validate_only: true", got[0].body)
	}
	if _, ok := real["validate_only"]; ok {
		t.Errorf("Send's body %s has validate_only", got[1].body)
	}
	if !reflect.DeepEqual(dry["message"], real["message"]) {
		t.Errorf("dry run message %v, Send's %v", dry["message"], real["message"])
	}
	if string(fcm.DryRunBody(wakeup(false))) == string(fcm.RequestBody(wakeup(false))) {
		t.Error("DryRunBody = RequestBody")
	}

	f.setSend(fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", nil))
	err := s.SendDryRun(ctx, wakeup(false))
	assertSafe(t, err)
	if d, ok := err.(*p2http.DeadTokenError); !ok || d.Reason != "UNREGISTERED" {
		t.Errorf("dry run to an unregistered token: %v, want a dead token UNREGISTERED", err)
	}
}

// Authenticate fetches an access token, which the next send reuses, and
// fails as Send fails when the token endpoint refuses the account.
func TestAuthenticate(t *testing.T) {
	f := newFake(t)
	s := f.sender(t)
	if err := s.Authenticate(context.Background()); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := s.Send(context.Background(), wakeup(false)); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}

	refused := newFake(t)
	refused.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	})
	err := refused.sender(t).Authenticate(context.Background())
	wantError(t, err, p2http.EUPSTREAM, 0)
	if n := refused.sendCalls.Load(); n != 0 {
		t.Errorf("Authenticate called FCM %d times", n)
	}
}
