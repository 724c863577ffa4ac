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
	"time"

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

// The fake judges a provider token's iat by its own clock, as Apple does:
// over an hour old is ExpiredProviderToken, ahead of it
// InvalidProviderToken. A topic of the team's other apps is
// DeviceTokenNotForTopic, any other TopicDisallowed.
func TestAPNsClockAndTopic(t *testing.T) {
	a := fake.NewAPNs()
	defer a.Close()
	a.TeamTopics = []string{"eu.siacs.Conversations.other"}
	for _, c := range []struct {
		name  string
		topic string
		skew  time.Duration
		want  string // Apple's reason, "" for delivered
	}{
		{"clocks together", a.Topic, 0, ""},
		{"clocks a little apart", a.Topic, -30 * time.Second, ""},
		{"provider clock behind", a.Topic, 2 * time.Hour, "ExpiredProviderToken"},
		{"provider clock ahead", a.Topic, -10 * time.Minute, "InvalidProviderToken"},
		{"another app of the team", "eu.siacs.Conversations.other", 0, "DeviceTokenNotForTopic"},
		{"another team's app", "org.example.chat", 0, "TopicDisallowed"},
	} {
		s, err := apns.New(apns.Config{Endpoint: a.Endpoint(), Topic: c.topic, SigningKey: a.SigningKey, KeyID: a.KeyID, TeamID: a.TeamID, HTTPClient: a.Client})
		if err != nil {
			t.Fatal(err)
		}
		a.SetClockSkew(c.skew)
		err = s.Send(context.Background(), p2http.Wakeup{Token: "aa", Device: "d"})
		var se *apns.StatusError
		var dead *p2http.DeadTokenError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want delivered", c.name, err)
		case c.want == "":
		case errors.As(err, &se) && se.Reason == c.want:
		case errors.As(err, &dead) && dead.Reason == c.want:
		default:
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}
