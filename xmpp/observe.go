package xmpp

import (
	"cmp"
	"slices"
)

// Kinds are the kinds of request Config.Observe reports: the requests
// served (ping, disco#info, disco#items, command, publish) and those
// refused for their shape (unsupported, too-large, unknown-type, empty).
// Metrics export each from the start.
var Kinds = []string{"publish", "command", "ping", "disco#info", "disco#items", "unsupported", "too-large", "unknown-type", "empty"}

// StanzaErrors returns every stanza error ErrorFor can answer with, each
// type and condition once, sorted: metrics export each from the start.
func StanzaErrors() []StanzaError {
	var out []StanzaError
	for _, c := range table {
		e := StanzaError{Type: c.typ, Condition: c.cond}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b StanzaError) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Condition, b.Condition))
	})
	return out
}
