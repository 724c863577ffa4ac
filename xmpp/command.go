package xmpp

import (
	"crypto/rand"
	"encoding/base64"
	"strings"

	"github.com/p2http/p2http"
	"mellium.im/xmpp/jid"
)

// The ad-hoc command nodes, as p2 named them; the service suffix is
// case-insensitive.
const (
	registerPrefix   = "register-push-"
	unregisterPrefix = "unregister-push-"
)

// commandNodes lists the commands in disco#items, with their names.
var commandNodes = []struct{ node, name string }{
	{"register-push-fcm", "Register for push through FCM"},
	{"register-push-apns", "Register for push through APNs"},
	{"unregister-push-fcm", "Unregister from push through FCM"},
	{"unregister-push-apns", "Unregister from push through APNs"},
}

// Limits of p2http's register request (openapi.yaml), checked here to refuse
// oversized values without a call.
const (
	maxDeviceIDLength = 256
	maxTokenLength    = 4096
	maxSessionID      = 128
)

// command is an ad-hoc command as p2xmpp executes it.
type command struct {
	node      string // as sent
	register  bool   // register, else unregister
	service   p2http.Service
	cancel    bool // action cancel: answered status canceled, nothing done
	sessionID string
	account   string // the sender's bare JID
	deviceID  string
	token     string // register only
}

// parseCommand reads a XEP-0050 command exactly as p2 read it: the node names
// the operation and the service; the first jabber:x:data child holds the
// fields token (register), device-id else android-id, and optionally muc
// (accepted and ignored); the form's type and FORM_TYPE are not checked. The
// account is the sender's bare JID. Actions execute, complete or none run
// the command; cancel cancels it.
func parseCommand(st *Stanza) (command, error) {
	cmd := st.payload()
	if !cmd.is(NSCommands, "command") {
		return command{}, fail(p2http.EINVALID, "not a command")
	}
	if st.Type() != "set" {
		return command{}, fail(p2http.EINVALID, "a command is executed with an IQ of type set")
	}
	c := command{node: cmd.attrValue("node"), sessionID: sessionID(cmd.attrValue("sessionid"))}
	var suffix string
	switch {
	case strings.HasPrefix(c.node, registerPrefix):
		c.register, suffix = true, c.node[len(registerPrefix):]
	case strings.HasPrefix(c.node, unregisterPrefix):
		suffix = c.node[len(unregisterPrefix):]
	default:
		return command{}, fail(p2http.ENOTFOUND, "no such command")
	}
	c.service = p2http.Service(strings.ToLower(suffix))
	if !c.service.Valid() {
		return command{}, fail(p2http.ENOTFOUND, "no such command")
	}
	switch cmd.attrValue("action") {
	case "", "execute", "complete":
	case "cancel":
		c.cancel = true
		return c, nil
	case "next", "prev":
		return command{}, fail(codeBadAction, "")
	default:
		return command{}, fail(codeMalformedAction, "")
	}
	account, err := senderAccount(st.From())
	if err != nil {
		return command{}, err
	}
	c.account = account
	x := firstForm(cmd)
	if x == nil {
		return command{}, fail(codeBadPayload, "the command needs a data form")
	}
	f := readForm(x)
	dev := f["device-id"]
	if dev.value() == "" {
		dev = f["android-id"]
	}
	if dev.value() == "" {
		return command{}, fail(codeBadPayload, "device-id or android-id is required")
	}
	if dev.truncated || len(dev.value()) > maxDeviceIDLength {
		return command{}, fail(p2http.EINVALID, "the device id is too long")
	}
	c.deviceID = dev.value()
	if c.register {
		tok := f["token"]
		if tok.value() == "" {
			return command{}, fail(codeBadPayload, "token is required")
		}
		if tok.truncated || len(tok.value()) > maxTokenLength {
			return command{}, fail(p2http.EINVALID, "the token is too long")
		}
		c.token = tok.value()
	}
	return c, nil
}

// senderAccount returns the bare JID of the command's sender.
func senderAccount(from string) (string, error) {
	if from == "" {
		return "", fail(p2http.EINVALID, "the stanza has no sender")
	}
	j, err := jid.Parse(from)
	if err != nil {
		return "", fail(p2http.EINVALID, "the sender's address is not a valid JID")
	}
	return j.Bare().String(), nil
}

// sessionID echoes the client's session id when it sent a sane one, and
// otherwise draws a fresh one: p2xmpp keeps no sessions, every command
// completes in one stage.
func sessionID(sent string) string {
	if sent != "" && len(sent) <= maxSessionID && strings.IndexFunc(sent, func(r rune) bool { return r < ' ' || r == 0x7f }) < 0 {
		return sent
	}
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// commandReply is the <command/> element of a reply.
func commandReply(c command, status string) *out {
	return el(NSCommands, "command", "node", c.node, "sessionid", c.sessionID, "status", status)
}

// registeredForm is the result form of a registration: jid, node, secret.
func registeredForm(componentJID, node, secret string) *out {
	field := func(name, value string) *out {
		return el("", "field", "var", name, "type", "text-single").add(el("", "value").withText(value))
	}
	return el(NSDataForm, "x", "type", "result").add(
		field("jid", componentJID),
		field("node", node),
		field("secret", secret),
	)
}
