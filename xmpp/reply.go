package xmpp

import (
	"encoding/xml"
	"io"
	"strings"
)

// out is an element to send. Children without a namespace inherit their
// parent's, as in the XML written.
type out struct {
	name     xml.Name
	attr     []xml.Attr
	text     string
	children []*out
}

// el returns an element named local in namespace space ("" to inherit),
// with attributes given as name/value pairs; pairs with an empty value are
// left out.
func el(space, local string, attrs ...string) *out {
	o := &out{name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			o.attr = append(o.attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return o
}

// add appends children and returns o.
func (o *out) add(children ...*out) *out {
	o.children = append(o.children, children...)
	return o
}

// withText sets the text and returns o.
func (o *out) withText(s string) *out {
	o.text = s
	return o
}

// tokens appends the tokens of o to dst.
func (o *out) tokens(dst []xml.Token) []xml.Token {
	dst = append(dst, xml.StartElement{Name: o.name, Attr: o.attr})
	if o.text != "" {
		dst = append(dst, xml.CharData(o.text))
	}
	for _, c := range o.children {
		dst = c.tokens(dst)
	}
	return append(dst, xml.EndElement{Name: o.name})
}

// Reply is a stanza to send.
type Reply struct {
	root *out
}

// TokenReader returns the reply's tokens, for mellium.im/xmpp's
// Session.Send or any other xml token writer.
func (r *Reply) TokenReader() xml.TokenReader {
	return &sliceReader{toks: r.root.tokens(nil)}
}

// String returns the reply as XML, for tests and debugging. It holds secrets
// (a register reply holds the node's secret): never log it.
func (r *Reply) String() string {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	for _, t := range r.root.tokens(nil) {
		if err := e.EncodeToken(t); err != nil {
			return "<!-- " + err.Error() + " -->"
		}
	}
	e.Flush()
	return b.String()
}

type sliceReader struct {
	toks []xml.Token
}

// Token implements xml.TokenReader.
func (s *sliceReader) Token() (xml.Token, error) {
	if len(s.toks) == 0 {
		return nil, io.EOF
	}
	t := s.toks[0]
	s.toks = s.toks[1:]
	return t, nil
}

// iqReply starts the reply to req: from is exactly the request's to (self
// when it had none), to is the request's from, id is the request's id
// verbatim.
func iqReply(req *Stanza, typ, self string) *out {
	space := req.Name().Space
	if space == "" {
		space = NSComponent
	}
	o := &out{name: xml.Name{Space: space, Local: "iq"}}
	o.attr = append(o.attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
	o.attr = append(o.attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: req.ID()})
	from := req.To()
	if from == "" {
		from = self
	}
	o.attr = append(o.attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from})
	o.attr = append(o.attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: req.From()})
	return o
}

// resultReply answers req with a result holding payload (may be nil).
func resultReply(req *Stanza, self string, payload *out) *Reply {
	o := iqReply(req, "result", self)
	if payload != nil {
		o.add(payload)
	}
	return &Reply{root: o}
}

// errorReply answers req with the stanza error e.
func errorReply(req *Stanza, self string, e StanzaError) *Reply {
	o := iqReply(req, "error", self)
	o.add(e.element())
	return &Reply{root: o}
}
