package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// Limits on what ReadStanza keeps of one stanza. A stanza beyond them is
// still read to its end (the stream stays usable) but is marked too large and
// answered with an error. Real pushes and commands hold a few dozen elements
// of a few hundred bytes; values longer than MaxValueLength (a long message
// body in a push summary, say) are cut and flagged, not refused.
const (
	// MaxElements is the number of elements kept per stanza.
	MaxElements = 256
	// MaxDepth is the nesting depth kept (the stanza element is depth 1).
	MaxDepth = 16
	// MaxAttrs is the number of attributes kept per element.
	MaxAttrs = 32
	// MaxValueLength is the length, in bytes, kept of one attribute value or
	// of the text of one element.
	MaxValueLength = 8192
	// MaxStanzaBytes is the total of attribute values and text kept.
	MaxStanzaBytes = 256 << 10
)

// element is what ReadStanza keeps of one XML element.
type element struct {
	name     xml.Name
	attr     []xml.Attr
	children []*element
	text     []byte
	// nonBlank is set when the element's own text holds anything but white
	// space, even beyond the part kept.
	nonBlank bool
	// truncated is set when the text or an attribute value was cut at
	// MaxValueLength.
	truncated bool
}

// attrValue returns the value of the unqualified attribute local.
func (e *element) attrValue(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// child returns the first child named space/local, or nil.
func (e *element) child(space, local string) *element {
	if e == nil {
		return nil
	}
	for _, c := range e.children {
		if c.name.Space == space && c.name.Local == local {
			return c
		}
	}
	return nil
}

// is reports whether e is named space/local.
func (e *element) is(space, local string) bool {
	return e != nil && e.name.Space == space && e.name.Local == local
}

// Stanza is one top-level element read from the stream: an IQ, a message, a
// presence or anything else. It keeps the structure of the element within
// the limits above; nothing is interpreted until a Component handles it.
type Stanza struct {
	root     *element
	tooLarge bool
}

// Name returns the stanza's element name, such as
// {jabber:component:accept iq}.
func (s *Stanza) Name() xml.Name { return s.root.name }

// ID returns the stanza's id attribute, verbatim.
func (s *Stanza) ID() string { return s.root.attrValue("id") }

// Type returns the stanza's type attribute.
func (s *Stanza) Type() string { return s.root.attrValue("type") }

// From returns the stanza's from attribute, verbatim.
func (s *Stanza) From() string { return s.root.attrValue("from") }

// To returns the stanza's to attribute, verbatim.
func (s *Stanza) To() string { return s.root.attrValue("to") }

// TooLarge reports whether the stanza exceeded the limits above; it is then
// answered with an error whatever it holds.
func (s *Stanza) TooLarge() bool { return s.tooLarge }

// IsIQ reports whether the stanza is an IQ of the component, client or server
// namespace.
func (s *Stanza) IsIQ() bool {
	return s.root.name.Local == "iq" && stanzaNS(s.root.name.Space)
}

func stanzaNS(space string) bool {
	return space == NSComponent || space == NSClient || space == NSServer || space == ""
}

// payload returns the first child element of the stanza, or nil.
func (s *Stanza) payload() *element {
	if len(s.root.children) == 0 {
		return nil
	}
	return s.root.children[0]
}

// ErrNotStart is returned by ReadStanza when the tokens do not start with an
// element.
var ErrNotStart = errors.New("xmpp: expected a start element")

// ReadStanza reads one element, from its start token to its matching end
// token, from r. Leading white space, comments and processing instructions
// are skipped. Beyond the limits above it keeps reading to the end of the
// element but keeps nothing more, and marks the stanza TooLarge. Errors come
// from r only (a broken stream), or are ErrNotStart or io.ErrUnexpectedEOF.
//
// To read a stanza a mellium.im/xmpp handler was called with, replay its
// start token: ReadStanza(xmlstream.MultiReader(xmlstream.Token(*start), t)).
func ReadStanza(r xml.TokenReader) (*Stanza, error) {
	var (
		root     *element
		stack    []*element // the kept elements on the current path
		depth    int        // the real depth, kept or not
		elements int
		kept     int
		tooLarge bool
	)
	for {
		tok, err := r.Token()
		if tok == nil && err != nil {
			if err == io.EOF {
				if root == nil {
					return nil, io.EOF
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if root == nil {
				root = &element{name: t.Name}
				kept += root.setAttrs(t.Attr)
				tooLarge = len(t.Attr) > MaxAttrs
				stack = append(stack, root)
				elements = 1
				break
			}
			if tooLarge || len(stack) != depth-1 {
				break
			}
			if elements >= MaxElements || depth > MaxDepth {
				tooLarge = true
				break
			}
			if len(t.Attr) > MaxAttrs {
				tooLarge = true
				break
			}
			el := &element{name: t.Name}
			kept += el.setAttrs(t.Attr)
			parent := stack[len(stack)-1]
			parent.children = append(parent.children, el)
			stack = append(stack, el)
			elements++
		case xml.EndElement:
			if root == nil {
				return nil, ErrNotStart
			}
			if len(stack) == depth {
				stack = stack[:depth-1]
			}
			depth--
			if depth == 0 {
				if kept > MaxStanzaBytes {
					tooLarge = true
				}
				return &Stanza{root: root, tooLarge: tooLarge}, nil
			}
		case xml.CharData:
			if root == nil {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, ErrNotStart
				}
				break
			}
			if tooLarge || len(stack) != depth {
				break
			}
			kept += stack[len(stack)-1].addText(t)
			if kept > MaxStanzaBytes {
				tooLarge = true
			}
		}
		if err != nil { // a token came with an error
			if err == io.EOF {
				if root == nil {
					return nil, io.EOF
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// setAttrs copies attrs, cutting long values, and returns the bytes kept.
func (e *element) setAttrs(attrs []xml.Attr) int {
	n := 0
	for i, a := range attrs {
		if i == MaxAttrs {
			break
		}
		v := a.Value
		if len(v) > MaxValueLength {
			v = v[:MaxValueLength]
			e.truncated = true
		}
		e.attr = append(e.attr, xml.Attr{Name: a.Name, Value: strings.Clone(v)})
		n += len(v)
	}
	return n
}

// addText appends text, cutting it at MaxValueLength, and returns the bytes
// kept.
func (e *element) addText(t xml.CharData) int {
	if !e.nonBlank && len(bytes.TrimSpace(t)) != 0 {
		e.nonBlank = true
	}
	room := MaxValueLength - len(e.text)
	if len(t) > room {
		t = t[:room]
		e.truncated = true
	}
	e.text = append(e.text, t...)
	return len(t)
}
