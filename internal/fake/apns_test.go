package fake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/internal/fake"
)

// The fake takes provider tokens of its own key, key id and team only, and
// once it knows some device tokens answers others BadDeviceToken.
func TestAPNsProviderTokenAndKnown(t *testing.T) {
	a := fake.NewAPNs()
	defer a.Close()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	otherKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	send := func(key []byte, keyID, teamID, token string) error {
		s, err := apns.New(apns.Config{Endpoint: a.Endpoint(), Topic: a.Topic, SigningKey: key, KeyID: keyID, TeamID: teamID, HTTPClient: a.Client})
		if err != nil {
			t.Fatal(err)
		}
		return s.Send(context.Background(), p2http.Wakeup{Token: token, Device: "d"})
	}
	reason := func(err error) string {
		var se *apns.StatusError
		if errors.As(err, &se) {
			return se.Reason
		}
		return ""
	}
	if err := send(a.SigningKey, a.KeyID, a.TeamID, "aa"); err != nil {
		t.Fatalf("the fake's own key: %v", err)
	}
	for _, c := range []struct {
		name                string
		key                 []byte
		keyID, teamID, want string
	}{
		{"another key", otherKey, a.KeyID, a.TeamID, "InvalidProviderToken"},
		{"another key id", a.SigningKey, "ZZZ999ZZZZ", a.TeamID, "InvalidProviderToken"},
		{"another team", a.SigningKey, a.KeyID, "ZZZ999ZZZZ", "InvalidProviderToken"},
	} {
		if got := reason(send(c.key, c.keyID, c.teamID, "aa")); got != c.want {
			t.Errorf("%s: reason %q, want %q", c.name, got, c.want)
		}
	}
	a.Known("aa")
	if err := send(a.SigningKey, a.KeyID, a.TeamID, "aa"); err != nil {
		t.Errorf("a known token: %v", err)
	}
	err = send(a.SigningKey, a.KeyID, a.TeamID, "bb")
	var dead *p2http.DeadTokenError
	if reason(err) != "BadDeviceToken" && !(errors.As(err, &dead) && dead.Reason == "BadDeviceToken") {
		t.Errorf("an unknown token: %v, want BadDeviceToken", err)
	}
}
