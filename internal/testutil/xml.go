package testutil

import "encoding/xml"

// Node is a generic XML element tree, for reading stanzas in tests: the
// element's name, its attributes, its character data and its child
// elements, in order.
type Node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []Node     `xml:",any"`
}

// ParseNode parses raw, one XML element, into a Node tree.
func ParseNode(raw string) (Node, error) {
	var n Node
	err := xml.Unmarshal([]byte(raw), &n)
	return n, err
}

// Attr returns the value of the unqualified attribute name, or "".
func (n Node) Attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child element named local (any namespace), or a
// zero Node.
func (n Node) Child(local string) Node {
	for _, c := range n.Nodes {
		if c.XMLName.Local == local {
			return c
		}
	}
	return Node{}
}

// Field returns the value of the field var=name of n, a data form
// (XEP-0004), or "".
func (n Node) Field(name string) string {
	for _, f := range n.Nodes {
		if f.XMLName.Local == "field" && f.Attr("var") == name {
			return f.Child("value").Text
		}
	}
	return ""
}
