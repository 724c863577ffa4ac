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
	"sync/atomic"

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

	tokenFetches atomic.Int64
	messages     atomic.Int64
}

// NewFCM starts a fake FCM for the project p2http-test; Close it when done.
func NewFCM() *FCM { return NewFCMProject("p2http-test") }

// NewFCMProject starts a fake FCM serving one project, whose credentials
// and access token are its own: a sender configured for another project is
// refused. Close it when done.
func NewFCMProject(projectID string) *FCM {
	f := &FCM{ProjectID: projectID, AccessToken: "fake-access-token-" + projectID}
	f.Server, f.Client = startTLS(http.HandlerFunc(f.serve))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	f.Credentials, _ = json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     f.ProjectID,
		"private_key_id": "fake-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "p2http@" + projectID + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      f.Server.URL + "/token",
	})
	return f
}

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
		f.tokenFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, f.AccessToken)
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
	if latency > 0 {
		write(w, Answer{Status: 200, Delay: latency, Body: `{"name":"projects/` + f.ProjectID + `/messages/1"}`})
		return
	}
	write(w, Answer{Status: 200, Body: `{"name":"projects/` + f.ProjectID + `/messages/1"}`})
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

// FCMMessage returns the FCM message the body of r, a messages:send
// request, carries. The body is decoded strictly: one JSON object
// {"message": …} holding exactly fcm.Message's fields, nothing after it. A
// body that holds anything else (a notification block, a second data key)
// or does not decode gives the zero Message, whose empty token no test
// expects; print r.Body to see it.
func (r Request) FCMMessage() fcm.Message {
	var req fcm.Request
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.DisallowUnknownFields()
	if d.Decode(&req) != nil || d.Decode(&struct{}{}) != io.EOF {
		return fcm.Message{}
	}
	return req.Message
}

// Sent returns the FCM messages received at messages:send, whatever the
// answer, in order (see Request.FCMMessage).
func (f *FCM) Sent() []fcm.Message {
	var out []fcm.Message
	for _, r := range f.Requests() {
		if isSend(r) {
			out = append(out, r.FCMMessage())
		}
	}
	return out
}

// isSend reports whether r was sent to messages:send, of any project.
func isSend(r Request) bool {
	return strings.HasPrefix(r.Path, "/v1/") && strings.HasSuffix(r.Path, "/messages:send")
}

// Tokens returns the FCM tokens of the messages received, in order.
func (f *FCM) Tokens() []string {
	var out []string
	for _, m := range f.Sent() {
		out = append(out, m.Token)
	}
	return out
}
