package xmpp

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/stanza"
)

// Seeds: the real shapes (../shared/REFERENCE.md §3) and some broken ones.
var publishSeeds = []string{
	// Prosody mod_cloud_notify.
	`<iq type='set' from='example.com' to='push.example.org' id='9f2c6e1a4b7d0c3e8f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e'>
 <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eKxTS5n3bOe0'><item>
  <notification xmlns='urn:xmpp:push:0'>
   <x xmlns='jabber:x:data' type='form'>
    <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>
    <field type='text-single' var='message-count'><value>1</value></field>
    <field type='text-single' var='pending-subscription-count'/>
    <field type='jid-single' var='last-message-sender'/>
    <field type='text-single' var='last-message-body'><value>New Message!</value></field>
   </x></notification></item></publish>
  <publish-options><x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
    <field var='secret'><value>KK4+H5WMfpRG/2zCbuKq6wpX</value></field></x></publish-options>
 </pubsub></iq>`,
	// Prosody with mod_cloud_notify_encrypted and _priority_tag.
	`<iq type='set' from='example.com' to='push.example.org' id='a1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eKxTS5n3bOe0'><item><notification xmlns='urn:xmpp:push:0'><encrypted xmlns='tigase:push:encrypt:0' iv='aXY=' type='voip'>cGF5bG9hZA==</encrypted><priority xmlns='tigase:push:priority:0'>high</priority></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='secret'><value>KK4+H5WMfpRG/2zCbuKq6wpX</value></field></x></publish-options></pubsub></iq>`,
	// ejabberd mod_push, with and without summary.
	`<iq xml:lang='en' to='push.example.org' from='example.com' type='set' id='rr-NGE1ZDJmNzQ/YjI=-1712345678-871/x=='><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eKxTS5n3bOe0'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='last-message-body' label='Body'><value>New message</value></field></x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>KK4+H5WMfpRG/2zCbuKq6wpX</value></field></x></publish-options></pubsub></iq>`,
	`<iq to='push.example.org' from='example.com' type='set' id='x/y=-z'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eKxTS5n3bOe0'><item><notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s</value></field></x></publish-options></pubsub></iq>`,
	`<iq type='get' from='example.com' to='push.example.org' id='g'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>`,
	`<iq type='set' from='example.com' id='n'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish><item/></publish></pubsub></iq>`,
	`<iq type='set' from='@' to='p' id='n'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/><publish-options><x xmlns='jabber:x:data'><field var='secret'><value> </value><value>s</value></field></x></publish-options></pubsub></iq>`,
}

var commandSeeds = []string{
	`<iq type='set' to='push.example.org' id='reg-1' from='alice@example.com/Conversations.Xj7q'>
  <command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>
    <x xmlns='jabber:x:data' type='submit'>
      <field var='token'><value>fGx3dKq1R0eT:APA91bHk3x_Example</value></field>
      <field var='android-id'><value>a1b2c3d4e5f60718</value></field>
    </x>
  </command>
</iq>`,
	`<iq type='set' to='push.example.org' id='c' from='alice@example.com/r'><command xmlns='http://jabber.org/protocol/commands' node='register-push-APNS' action='complete' sessionid='s1'><x xmlns='jabber:x:data' type='submit'><field var='token'><value>4f1c0e9a</value></field><field var='device-id'><value>d</value></field><field var='muc'><value>room@conference.example.com</value></field></x></command></iq>`,
	`<iq type='set' to='push.example.org' id='c' from='alice@example.com/r'><command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm'><x xmlns='jabber:x:data'><field var='android-id'><value>a</value></field></x></command></iq>`,
	`<iq type='set' to='push.example.org' id='c' from='alice@example.com/r'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='cancel'/></iq>`,
	`<iq type='set' to='push.example.org' id='c' from='alice@example.com/r'><command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='next'/></iq>`,
	`<iq type='set' to='push.example.org' id='c' from='alice@example.com/r'><command xmlns='http://jabber.org/protocol/commands' node='register-push-'><x xmlns='jabber:x:data'><field/><field var=''/></x></command></iq>`,
	`<iq type='get' id='d' from='a@b/c'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`,
}

// recorder is a small fake of p2http's services: every call fails with
// err, or succeeds when err is nil; it remembers the last push.
type recorder struct {
	err  error
	push p2http.PushRequest
}

func (r *recorder) Describe(context.Context) (p2http.Info, error) {
	return p2http.Info{JID: "push.example.org"}, nil
}
func (r *recorder) Register(context.Context, p2http.RegisterRequest) (p2http.Registered, error) {
	if r.err != nil {
		return p2http.Registered{}, r.err
	}
	return p2http.Registered{JID: "push.example.org", Node: "eKxTS5n3bOe0", Secret: "KK4+H5WMfpRG/2zCbuKq6wpX"}, nil
}
func (r *recorder) Unregister(context.Context, p2http.UnregisterRequest) error {
	return r.err
}
func (r *recorder) Lookup(context.Context, string) (p2http.Registration, error) {
	return p2http.Registration{}, p2http.Errorf(p2http.ENOTFOUND, "no registration holds this node")
}
func (r *recorder) Push(_ context.Context, req p2http.PushRequest) (p2http.PushResult, error) {
	r.push = req
	return p2http.PushResult{}, r.err
}

// checkReply handles st with a Component over rec and checks that the reply,
// if any, is well-formed XML addressed back to the request.
func checkReply(t *testing.T, st *Stanza, rec *recorder) {
	c, err := New(Config{JID: "push.example.org", Registrar: rec, Pusher: rec, Describer: rec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	reply := c.Handle(context.Background(), st)
	if reply == nil {
		return
	}
	raw := reply.String()
	d := xml.NewDecoder(strings.NewReader(raw))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reply is not XML: %v\n%s", err, raw)
		}
	}
	if !st.IsIQ() || st.ID() == "" || st.From() == "" {
		t.Fatalf("reply to a stanza that needs none:\n%s", raw)
	}
}

func FuzzParsePublish(f *testing.F) {
	for _, s := range publishSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := parseRaw(raw)
		if err != nil {
			return
		}
		req, err := parsePublish(st)
		if err == nil {
			if strings.TrimSpace(req.Node) == "" || len(req.Node) > maxNodeLength ||
				strings.TrimSpace(req.Secret) == "" || len(req.Secret) > maxSecretLength || req.Domain == "" {
				t.Fatalf("accepted %+v", req)
			}
		} else {
			se := ErrorFor(err)
			if se.Type != stanza.Modify && se.Type != stanza.Auth {
				t.Fatalf("a malformed publish answered %s", se)
			}
		}
		checkReply(t, st, &recorder{})
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := parseRaw(raw)
		if err != nil {
			return
		}
		cmd, err := parseCommand(st)
		if err == nil && !cmd.cancel {
			if !cmd.service.Valid() || strings.TrimSpace(cmd.deviceID) == "" || len(cmd.deviceID) > maxDeviceIDLength ||
				cmd.register && (strings.TrimSpace(cmd.token) == "" || len(cmd.token) > maxTokenLength) ||
				cmd.account == "" || cmd.sessionID == "" || len(cmd.sessionID) > maxSessionID {
				t.Fatalf("accepted %+v", cmd)
			}
		}
		if err != nil {
			if se := ErrorFor(err); se.Type == stanza.Wait {
				t.Fatalf("a malformed command answered %s", se)
			}
		}
		checkReply(t, st, &recorder{})
	})
}

// ReadStanza keeps its limits whatever arrives.
func TestReadStanzaLimits(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		tooLarge bool
	}{
		{"many elements", "<iq>" + strings.Repeat("<a/>", MaxElements) + "</iq>", true},
		{"just enough elements", "<iq>" + strings.Repeat("<a/>", MaxElements-1) + "</iq>", false},
		{"deep", strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1), true},
		{"just deep enough", strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth), false},
		{"many attributes", "<iq" + strings.Repeat(" a='1'", 0) + manyAttrs(MaxAttrs+1) + "/>", true},
		{"long text", "<iq><b>" + strings.Repeat("x", 10*MaxValueLength) + "</b></iq>", false},
		{"much text", "<iq>" + strings.Repeat("<b>"+strings.Repeat("x", MaxValueLength)+"</b>", 40) + "</iq>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseRaw([]byte(tt.raw + "<next/>"))
			if err != nil {
				t.Fatal(err)
			}
			if st.TooLarge() != tt.tooLarge {
				t.Fatalf("TooLarge %v", st.TooLarge())
			}
		})
	}
	st, _ := parseRaw([]byte("<iq><b>  " + strings.Repeat("x", 2*MaxValueLength) + "</b></iq>"))
	b := st.root.children[0]
	if !b.truncated || !b.nonBlank || len(b.text) != MaxValueLength {
		t.Fatalf("long text kept %d bytes, truncated %v", len(b.text), b.truncated)
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("='1'")
	}
	return b.String()
}

func TestReadStanzaErrors(t *testing.T) {
	for _, raw := range []string{"<iq>", "<iq><a></iq>", "text<iq/>"} {
		if _, err := parseRaw([]byte(raw)); err == nil {
			t.Errorf("%q read without error", raw)
		}
	}
	if _, err := ReadStanza(xml.NewDecoder(strings.NewReader(" "))); err != io.EOF {
		t.Errorf("empty input: %v", err)
	}
}
