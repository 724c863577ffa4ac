package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/p2http/p2http/api/client"
	"github.com/p2http/p2http/db/dbtest"
)

// TestGeneratedClient drives the API through the Go client generated from
// openapi.yaml, as an integrator would, over the validating transport.
func TestGeneratedClient(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), options{tokens: []string{"admin-token"}})
	auth := client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer admin-token")
		return nil
	})
	c, err := client.NewClientWithResponses(e.URL, client.WithHTTPClient(e.Client), auth)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	reg, err := c.RegisterWithResponse(ctx, client.RegisterRequest{
		Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9", Token: "fcm-token-client",
	})
	if err != nil || reg.StatusCode() != 201 || reg.JSON201 == nil {
		t.Fatalf("register: %v %d %s", err, reg.StatusCode(), reg.Body)
	}
	again, err := c.RegisterWithResponse(ctx, client.RegisterRequest{
		Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9", Token: "fcm-token-new",
	})
	if err != nil || again.StatusCode() != 200 || again.JSON200.Node != reg.JSON201.Node || again.JSON200.Secret != reg.JSON201.Secret {
		t.Fatalf("re-register: %v %d %s", err, again.StatusCode(), again.Body)
	}

	important := true
	push, err := c.PushWithResponse(ctx, client.PushRequest{Node: reg.JSON201.Node, Secret: reg.JSON201.Secret, Important: &important})
	if err != nil || push.JSON200 == nil || push.JSON200.Priority != client.PriorityHigh || push.JSON200.Service != client.ServiceFcm {
		t.Fatalf("push: %v %d %s", err, push.StatusCode(), push.Body)
	}
	if got := e.FCM.Tokens(); len(got) != 1 || got[0] != "fcm-token-new" {
		t.Fatalf("FCM tokens %v", got)
	}

	info, err := c.GetRegistrationWithResponse(ctx, &client.GetRegistrationParams{Node: reg.JSON201.Node})
	if err != nil || info.JSON200 == nil || info.JSON200.Domain != "example.org" || info.JSON200.LastPushAt == nil {
		t.Fatalf("registration: %v %d %s", err, info.StatusCode(), info.Body)
	}

	bad, err := c.PushWithResponse(ctx, client.PushRequest{Node: reg.JSON201.Node, Secret: "wrong-secret-wrong-secret"})
	if err != nil || bad.StatusCode() != 403 || bad.ApplicationproblemJSON403 == nil ||
		bad.ApplicationproblemJSON403.Type != client.ProblemTypeForbidden {
		t.Fatalf("wrong secret: %v %d %s", err, bad.StatusCode(), bad.Body)
	}

	un, err := c.UnregisterWithResponse(ctx, client.UnregisterRequest{Service: client.ServiceFcm, Account: "carol@example.org", DeviceId: "android-id-9"})
	if err != nil || un.StatusCode() != 204 {
		t.Fatalf("unregister: %v %d %s", err, un.StatusCode(), un.Body)
	}
	ready, err := c.ReadyzWithResponse(ctx)
	if err != nil || ready.JSON200 == nil || ready.JSON200.Status != client.ReadinessStatusReady {
		t.Fatalf("readyz: %v %s", err, ready.Body)
	}
}
