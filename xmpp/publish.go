package xmpp

import (
	"strings"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/jid"
)

// Limits of p2http's push request (openapi.yaml), checked here to refuse
// oversized values without a call.
const (
	maxNodeLength   = p2http.MaxNodeLength
	maxSecretLength = p2http.MaxSecretLength
)

// parsePublish reads a XEP-0357 publish: the IQ set whose payload is
// <pubsub xmlns='http://jabber.org/protocol/pubsub'>, in every shape Prosody
// (mod_cloud_notify and its encrypted and priority-tag extensions) and
// ejabberd (mod_push) send. It returns the push request p2http gets: node,
// secret, the publisher's domain and whether the push is important. Nothing
// else of the summary (body, sender, counts) is read out.
func parsePublish(st *Stanza) (p2http.PushRequest, error) {
	pubsub := st.payload()
	if !pubsub.is(NSPubSub, "pubsub") {
		return p2http.PushRequest{}, fail(p2http.EINVALID, "not a publish")
	}
	if st.Type() != "set" {
		return p2http.PushRequest{}, fail(p2http.EINVALID, "a push is an IQ of type set")
	}
	publish := pubsub.child(NSPubSub, "publish")
	if publish == nil {
		return p2http.PushRequest{}, fail(p2http.EFORBIDDEN, "not a publish, or no node")
	}
	node := publish.attrValue("node")
	if strings.TrimSpace(node) == "" {
		return p2http.PushRequest{}, fail(p2http.EFORBIDDEN, "publish without node")
	}
	secret, ok := publishSecret(pubsub.child(NSPubSub, "publish-options"))
	if !ok {
		return p2http.PushRequest{}, fail(p2http.EFORBIDDEN, "publish without secret")
	}
	if len(node) > maxNodeLength || publish.truncated {
		return p2http.PushRequest{}, fail(p2http.EINVALID, "the node is too long")
	}
	if len(secret.value()) > maxSecretLength || secret.truncated {
		return p2http.PushRequest{}, fail(p2http.EINVALID, "the secret is too long")
	}
	domain, err := senderDomain(st.From())
	if err != nil {
		return p2http.PushRequest{}, err
	}
	return p2http.PushRequest{
		Node:      node,
		Secret:    secret.value(),
		Domain:    domain,
		Important: important(publish.child(NSPubSub, "item").child(NSPush, "notification")),
	}, nil
}

// publishSecret returns the secret field of the publish options: the first
// data form holding a non-blank secret.
func publishSecret(options *element) (formField, bool) {
	if options == nil {
		return formField{}, false
	}
	for _, x := range options.children {
		if !x.is(NSDataForm, "x") {
			continue
		}
		if f := readForm(x)["secret"]; f.value() != "" {
			return f, true
		}
	}
	return formField{}, false
}

// important reports whether the notification asks for a high-priority
// wake-up: its summary's last-message-body has a non-blank value (Prosody and
// ejabberd put a dummy text there for messages with a body), a Tigase
// priority element says high, or a Tigase encrypted payload is of type voip.
func important(n *element) bool {
	if n == nil {
		return false
	}
	for _, c := range n.children {
		switch {
		case c.is(NSDataForm, "x"):
			if readForm(c)["last-message-body"].nonBlank {
				return true
			}
		case c.is(NSTigasePriority, "priority"):
			if strings.EqualFold(strings.TrimSpace(string(c.text)), "high") {
				return true
			}
		case c.is(NSTigaseEncrypt, "encrypted"):
			if strings.EqualFold(c.attrValue("type"), "voip") {
				return true
			}
		}
	}
	return false
}

// senderDomain returns the domainpart of the publisher's address: the
// server's domain (Prosody and ejabberd publish from their domain).
func senderDomain(from string) (string, error) {
	if from == "" {
		return "", fail(p2http.EINVALID, "the stanza has no sender")
	}
	j, err := jid.Parse(from)
	if err != nil {
		return "", fail(p2http.EINVALID, "the sender's address is not a valid JID")
	}
	return j.Domainpart(), nil
}
