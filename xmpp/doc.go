// Package xmpp is the translation at the heart of p2xmpp, the XEP-0114
// component that connects p2http to Prosody and ejabberd. It knows nothing of
// the connection, nor of HTTP: it reads stanzas from XML tokens, turns them
// into calls on p2http's services (p2http.Registrar, p2http.Pusher,
// p2http.Describer; p2xmpp gives it api.Client, which reaches them over
// HTTP) and builds the replies.
//
// What it understands:
//
//   - XEP-0050 ad-hoc commands register-push-fcm, register-push-apns,
//     unregister-push-fcm and unregister-push-apns, read and answered as p2
//     (the Conversations push proxy) did;
//   - XEP-0357 publishes, in every shape Prosody and ejabberd send, turned
//     into a content-free push request (node, secret, the publisher's domain
//     and whether the push is important; never the message body or sender);
//   - XEP-0030 service discovery, XEP-0199 ping.
//
// Every failure becomes a stanza error by its error code, the domain's or
// p2xmpp's own, through one table (errors.go): only permanent conditions
// caused by the user's registration are answered with a type other than
// wait, because ejabberd deletes a registration at the first such error and
// Prosody after a few.
package xmpp

// Namespaces p2xmpp reads and writes.
const (
	NSComponent = "jabber:component:accept"
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
	NSStanzas   = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSCommands  = "http://jabber.org/protocol/commands"
	NSDataForm  = "jabber:x:data"
	NSPubSub    = "http://jabber.org/protocol/pubsub"
	NSPush      = "urn:xmpp:push:0"
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	NSDiscoItem = "http://jabber.org/protocol/disco#items"
	NSPing      = "urn:xmpp:ping"
	// NSTigasePriority is mod_cloud_notify_priority_tag's element.
	NSTigasePriority = "tigase:push:priority:0"
	// NSTigaseEncrypt is mod_cloud_notify_encrypted's element.
	NSTigaseEncrypt = "tigase:push:encrypt:0"

	nsXML = "http://www.w3.org/XML/1998/namespace"
)
