package xmpp_test

import (
	"fmt"
	"strings"
)

// The stanzas below are copied from what the real clients and servers send
// (../shared/REFERENCE.md §3), with NODE, SECRET and the like filled in.

const (
	alice       = "alice@example.com"
	aliceFull   = "alice@example.com/Conversations.Xj7q"
	androidID   = "a1b2c3d4e5f60718"
	fcmToken1   = "fGx3dKq1R0eT:APA91bHk3x_Example-Token-One_ZZZZ"
	fcmToken2   = "cQ9zT2w8S1aB:APA91bFm2y_Example-Token-Two_YYYY"
	apnsToken   = "4f1c0e9a3b2d8f7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170605"
	prosodyID   = "9f2c6e1a4b7d0c3e8f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e"
	ejabberdID  = "rr-NGE1ZDJmNzQ/YjI=-1712345678-871/x=="
	messageBody = "Hi Alice, the door code is 4711"
)

// conversationsRegister is Conversations' register-push-fcm command.
func conversationsRegister(id, node, token, android string) string {
	return fmt.Sprintf(`<iq type='set' to='push.example.org' id='%s' from='%s'>
  <command xmlns='http://jabber.org/protocol/commands' node='%s' action='execute'>
    <x xmlns='jabber:x:data' type='submit'>
      <field var='token'><value>%s</value></field>
      <field var='android-id'><value>%s</value></field>
    </x>
  </command>
</iq>`, id, aliceFull, node, token, android)
}

// command builds an ad-hoc command with the given attributes on <command/>
// and the given inner XML.
func command(id, attrs, inner string) string {
	return fmt.Sprintf(`<iq type='set' to='push.example.org' id='%s' from='%s'><command xmlns='http://jabber.org/protocol/commands' %s>%s</command></iq>`,
		id, aliceFull, attrs, inner)
}

// form builds a submitted data form from name/value pairs.
func form(pairs ...string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'>`)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, `<field var='%s'><value>%s</value></field>`, pairs[i], pairs[i+1])
	}
	b.WriteString(`</x>`)
	return b.String()
}

// prosodyPublish is Prosody mod_cloud_notify's publish, the summary form of
// type form; body "" gives a last-message-body field without value, as for
// an "unimportant" push.
func prosodyPublish(id, node, secret, body string) string {
	bodyField := `<field type='text-single' var='last-message-body'/>`
	if body != "" {
		bodyField = `<field type='text-single' var='last-message-body'><value>` + body + `</value></field>`
	}
	return fmt.Sprintf(`<iq type='set' from='example.com' to='push.example.org' id='%s'>
 <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>
  <notification xmlns='urn:xmpp:push:0'>
   <x xmlns='jabber:x:data' type='form'>
    <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>
    <field type='text-single' var='message-count'><value>1</value></field>
    <field type='text-single' var='pending-subscription-count'/>
    <field type='jid-single' var='last-message-sender'><value>bob@example.com/phone</value></field>
    %s
   </x></notification></item></publish>
  <publish-options><x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
    <field var='secret'><value>%s</value></field></x></publish-options>
 </pubsub></iq>`, id, node, bodyField, secret)
}

// prosodyNotification is a Prosody publish with the given <notification/>
// content (mod_cloud_notify_encrypted, mod_cloud_notify_priority_tag).
func prosodyNotification(id, node, secret, notification string) string {
	return fmt.Sprintf(`<iq type='set' from='example.com' to='push.example.org' id='%s'>
 <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>
  <notification xmlns='urn:xmpp:push:0'>%s</notification></item></publish>
  <publish-options><x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
    <field var='secret'><value>%s</value></field></x></publish-options>
 </pubsub></iq>`, id, node, notification, secret)
}

// ejabberdPublish is ejabberd mod_push's publish: a submit summary whose
// fields carry labels and no message-count; body "" leaves the summary out
// entirely, as ejabberd does for pushes without a body.
func ejabberdPublish(id, from, node, secret, body string) string {
	notification := `<notification xmlns='urn:xmpp:push:0'/>`
	if body != "" {
		notification = `<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>` +
			`<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>` +
			`<field var='last-message-sender' label='Sender'><value>bob@example.com/phone</value></field>` +
			`<field var='last-message-body' label='Body'><value>` + body + `</value></field>` +
			`</x></notification>`
	}
	return fmt.Sprintf(`<iq xml:lang='en' to='push.example.org' from='%s' type='set' id='%s'>`+
		`<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item>%s</item></publish>`+
		`<publish-options><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var='secret'><value>%s</value></field></x></publish-options></pubsub></iq>`,
		from, id, node, notification, secret)
}
