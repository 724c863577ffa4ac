package fake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"

	"github.com/p2http/p2http/fcm"
)

// FCM is a fake FCM HTTP v1 API with its own OAuth2 token endpoint.
type FCM struct {
	recorder
	// Server serves /token and /v1/projects/{project}/messages:send.
	Server *httptest.Server
	// Client trusts Server's certificate.
	Client *http.Client
	// ProjectID is the project of Credentials.
	ProjectID string
	// Credentials is a service-account key file whose token_uri points at
	// Server.
	Credentials []byte
	// AccessToken is what the token endpoint hands out.
	AccessToken string

	// key signs Credentials' assertions; the token endpoint checks them
	// against it.
	key          *rsa.PrivateKey
	tokenFetches atomic.Int64
	messages     atomic.Int64
	known        knownTokens
}

// knownTokens are the tokens a fake has issued, once Known was called.
type knownTokens struct {
	mu     sync.Mutex
	tokens map[string]bool // nil: every token is known
}

// add makes tokens known.
func (k *knownTokens) add(tokens []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tokens == nil {
		k.tokens = map[string]bool{}
	}
	for _, t := range tokens {
		k.tokens[t] = true
	}
}

// has reports whether token is known: always, until add was called.
func (k *knownTokens) has(token string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tokens == nil || k.tokens[token]
}

// NewFCM starts a fake FCM for the project p2http-test; Close it when done.
func NewFCM() *FCM { return NewFCMProject("p2http-test") }

// NewFCMProject starts a fake FCM serving one project, whose credentials
// and access token are its own: a sender configured for another project is
// refused. Close it when done.
func NewFCMProject(projectID string) *FCM {
	f := &FCM{ProjectID: projectID, AccessToken: "fake-access-token-" + projectID}
	f.Server, f.Client = startTLS(http.HandlerFunc(f.serve))
	f.key = newRSAKey()
	f.Credentials = f.credentials(f.key)
	return f
}

// newRSAKey returns a fresh service-account key.
func newRSAKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}

// credentials returns the service-account key file of the fake's account
// holding key.
func (f *FCM) credentials(key *rsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     f.ProjectID,
		"private_key_id": "fake-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   f.clientEmail(),
		"client_id":      "1",
		"token_uri":      f.Server.URL + "/token",
	})
	return b
}

func (f *FCM) clientEmail() string { return "p2http@" + f.ProjectID + ".iam.gserviceaccount.com" }

// RevokedCredentials returns a key file of the same service account and
// token endpoint as Credentials, holding a key the token endpoint does not
// accept: a key deleted or revoked in the Google Cloud console, which the
// token endpoint refuses with invalid_grant.
func (f *FCM) RevokedCredentials() []byte { return f.credentials(newRSAKey()) }

// Known makes the fake know only the given registration tokens (and those
// of later calls): it answers any other token 404 UNREGISTERED, as FCM
// answers a token the app no longer holds. Until the first call every
// token is known.
func (f *FCM) Known(tokens ...string) { f.known.add(tokens) }

// Endpoint is the base URL to configure, including /v1.
func (f *FCM) Endpoint() string { return f.Server.URL + "/v1" }

// Close stops the server.
func (f *FCM) Close() { f.Server.Close() }

// TokenFetches counts access tokens handed out.
func (f *FCM) TokenFetches() int64 { return f.tokenFetches.Load() }

// Messages counts send requests received.
func (f *FCM) Messages() int64 { return f.messages.Load() }

func (f *FCM) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.serveToken(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.messages.Add(1)
	a, latency := f.take(Request{Method: r.Method, Path: r.URL.Path, Proto: r.ProtoMajor, Header: r.Header.Clone(), Body: body})
	if a != nil {
		write(w, *a)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.AccessToken {
		write(w, FCMError(401, "UNAUTHENTICATED", "", "Request had invalid authentication credentials."))
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/"+f.ProjectID+"/messages:send" {
		write(w, FCMError(404, "NOT_FOUND", "", "no such method"))
		return
	}
	req := Request{Body: body}.FCMRequest()
	if !f.known.has(req.Message.Token) {
		write(w, FCMError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."))
		return
	}
	name := `{"name":"projects/` + f.ProjectID + `/messages/1"}`
	if req.ValidateOnly {
		// FCM's answer to a dry run names no real message.
		name = `{"name":"projects/` + f.ProjectID + `/messages/fake_message_id"}`
	}
	write(w, Answer{Status: 200, Delay: latency, Body: name})
}

// serveToken is the OAuth2 token endpoint: like Google's, it grants an
// access token for a JWT assertion signed with the service account's key
// and naming the account and the endpoint, and answers 400 invalid_grant
// to any other.
func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, err := jwt.Parse(r.PostFormValue("assertion"), func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(f.clientEmail()), jwt.WithAudience(f.Server.URL+"/token"))
	if r.PostFormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
		return
	}
	f.tokenFetches.Add(1)
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, f.AccessToken)
}

// FCMError builds an FCM v1 error answer; errorCode (such as UNREGISTERED)
// goes into the FcmError detail when not empty.
func FCMError(status int, grpcStatus, errorCode, message string) Answer {
	details := "[]"
	if errorCode != "" {
		details = fmt.Sprintf(`[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":%q}]`, errorCode)
	}
	return Answer{Status: status, Body: fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":%q,"details":%s}}`,
		status, message, grpcStatus, details)}
}

// FCMRequest returns the messages:send request the body of r is. The body
// is decoded strictly: one JSON object {"message": …, "validate_only": …}
// holding exactly fcm.Request's fields, nothing after it. A body that
// holds anything else (a notification block, a second data key) or does
// not decode gives the zero Request, whose empty token no test expects;
// print r.Body to see it.
func (r Request) FCMRequest() fcm.Request {
	var req fcm.Request
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.DisallowUnknownFields()
	if d.Decode(&req) != nil || d.Decode(&struct{}{}) != io.EOF {
		return fcm.Request{}
	}
	return req
}

// FCMMessage returns the FCM message the body of r, a messages:send
// request, carries (see FCMRequest).
func (r Request) FCMMessage() fcm.Message { return r.FCMRequest().Message }

// Sent returns the FCM messages received at messages:send to be
// delivered, whatever the answer, in order (see Request.FCMMessage); dry
// runs (validate_only) are DryRuns'.
func (f *FCM) Sent() []fcm.Message { return f.received(false) }

// DryRuns returns the FCM messages received at messages:send with
// validate_only set, which FCM checks and never delivers, in order.
func (f *FCM) DryRuns() []fcm.Message { return f.received(true) }

// received returns the messages received with validate_only dry.
func (f *FCM) received(dry bool) []fcm.Message {
	var out []fcm.Message
	for _, r := range f.Requests() {
		if req := r.FCMRequest(); isSend(r) && req.ValidateOnly == dry {
			out = append(out, req.Message)
		}
	}
	return out
}

// isSend reports whether r was sent to messages:send, of any project.
func isSend(r Request) bool {
	return strings.HasPrefix(r.Path, "/v1/") && strings.HasSuffix(r.Path, "/messages:send")
}

// Tokens returns the FCM tokens of the messages Sent, in order.
func (f *FCM) Tokens() []string {
	var out []string
	for _, m := range f.Sent() {
		out = append(out, m.Token)
	}
	return out
}
