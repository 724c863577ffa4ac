package xmpp

import "github.com/p2http/p2http"

// features are what disco#info on the component lists.
var features = []string{
	NSPush,
	NSCommands,
	NSDiscoInfo,
	NSDiscoItem,
	NSPing,
}

// discoInfo answers disco#info on the component (no node), on the commands
// node and on each command node (XEP-0050 §2.4).
func (c *Component) discoInfo(node string) (*out, error) {
	q := el(NSDiscoInfo, "query", "node", node)
	feature := func(v string) *out { return el("", "feature", "var", v) }
	switch {
	case node == "":
		q.add(el("", "identity", "category", "pubsub", "type", "push", "name", "p2http"))
		for _, f := range features {
			q.add(feature(f))
		}
	case node == NSCommands:
		q.add(el("", "identity", "category", "automation", "type", "command-list", "name", "Commands"))
	default:
		name := commandName(node)
		if name == "" {
			return nil, fail(p2http.ENOTFOUND, "no such node")
		}
		q.add(el("", "identity", "category", "automation", "type", "command-node", "name", name),
			feature(NSCommands), feature(NSDataForm))
	}
	return q, nil
}

// discoItems answers disco#items: nothing on the component itself, the four
// commands on the commands node.
func (c *Component) discoItems(node string) (*out, error) {
	q := el(NSDiscoItem, "query", "node", node)
	switch node {
	case "":
	case NSCommands:
		for _, cmd := range commandNodes {
			q.add(el("", "item", "jid", c.jid.String(), "node", cmd.node, "name", cmd.name))
		}
	default:
		if commandName(node) == "" {
			return nil, fail(p2http.ENOTFOUND, "no such node")
		}
	}
	return q, nil
}

// commandName returns the name of the command node, or "".
func commandName(node string) string {
	for _, cmd := range commandNodes {
		if cmd.node == node {
			return cmd.name
		}
	}
	return ""
}
