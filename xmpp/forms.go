package xmpp

import "strings"

// formField is one field of a XEP-0004 data form as read.
type formField struct {
	// values holds the text of each <value/>, cut at MaxValueLength.
	values []string
	// truncated is set when a value was longer than MaxValueLength.
	truncated bool
	// nonBlank is set when a value holds anything but white space.
	nonBlank bool
}

// value returns the first value that is not blank, verbatim, or "".
func (f formField) value() string {
	for _, v := range f.values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// form is a data form: its fields by var; the first field of a name wins.
type form map[string]formField

// readForm reads the fields of x, a jabber:x:data element. Its type and
// FORM_TYPE are not checked, as p2 did not.
func readForm(x *element) form {
	f := form{}
	for _, c := range x.children {
		if c.name.Local != "field" || c.name.Space != NSDataForm {
			continue
		}
		name := c.attrValue("var")
		if _, seen := f[name]; seen || name == "" {
			continue
		}
		var ff formField
		for _, v := range c.children {
			if v.name.Local != "value" || v.name.Space != NSDataForm {
				continue
			}
			ff.values = append(ff.values, string(v.text))
			ff.truncated = ff.truncated || v.truncated
			ff.nonBlank = ff.nonBlank || v.nonBlank
		}
		f[name] = ff
	}
	return f
}

// firstForm returns the first jabber:x:data child of e, or nil.
func firstForm(e *element) *element {
	if e == nil {
		return nil
	}
	for _, c := range e.children {
		if c.is(NSDataForm, "x") {
			return c
		}
	}
	return nil
}
