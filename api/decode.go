package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/p2http/p2http"
)

// decodeOptions make the request decoder strict where encoding/json is
// lenient: names match their field exactly (encoding/json folds case), an
// unknown or repeated name is an error (encoding/json ignores the first of
// two), and so is invalid UTF-8, a lone surrogate escape included
// (encoding/json replaces both with U+FFFD, so that "x\xff", "x\xfe" and
// "x\uFFFD" were one device id). Only decoding uses this package: answers
// are written by encoding/json, as before.
var decodeOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// bodyBuffers recycle the buffers request bodies are read into; decoding
// copies every string out of them.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decode reads the request body, one JSON object sent as application/json,
// into v. It is the only way a handler reads a body. On failure it writes
// the problem (415 for another media type, 413 for a body over the limit,
// 400 for anything else) and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		s.problem(w, r, p2http.Errorf(codeMediaType,
			"send the request body as a JSON object with Content-Type: application/json "+
				"(a charset parameter, if any, must be utf-8)"))
		return false
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bodyBuffers.Put(buf) }()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			s.problem(w, r, p2http.Errorf(codeBodyTooLarge, "the request body is limited to %d bytes", s.cfg.MaxBodyBytes))
		} else {
			s.problem(w, r, p2http.Errorf(p2http.EINVALID, "the request body could not be read"))
		}
		return false
	}
	if err := decodeJSON(buf.Bytes(), v); err != nil {
		s.problem(w, r, err)
		return false
	}
	return true
}

// jsonContentType reports whether ct is application/json, with no
// parameter but an optional charset of utf-8. Every other type is refused,
// the three a web page may send to another origin without a preflight
// (text/plain, application/x-www-form-urlencoded, multipart/form-data)
// first of all.
func jsonContentType(ct string) bool {
	if ct == "application/json" { // what every client of ours sends: no allocation
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return false
		}
	}
	return true
}

// decodeJSON decodes body, which must be exactly one JSON object, into v
// with decodeOptions. A failure is an EINVALID *p2http.Error whose field is
// the member at fault, when there is one, written as dotted path
// ("summary.message_count"). Its message never repeats a value of the
// body, only member names.
func decodeJSON(body []byte, v any) *p2http.Error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return p2http.Errorf(p2http.EINVALID, "a JSON request body is required")
	case trimmed[0] != '{':
		return p2http.Errorf(p2http.EINVALID, "the request body must be one JSON object")
	}
	err := json.Unmarshal(body, v, decodeOptions)
	if err == nil {
		return nil
	}
	var (
		syn *jsontext.SyntacticError
		sem *json.SemanticError
	)
	switch {
	case errors.As(err, &syn):
		field := fieldOf(syn.JSONPointer)
		off := syn.ByteOffset
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return p2http.Invalid(field, "duplicate field %q", field)
		case off >= 0 && off < int64(len(body)) && (invalidUTF8At(body) == int(off) || surrogateEscapeAt(body[off:])):
			if field == "" {
				return p2http.Invalid("", "the request body holds invalid UTF-8 (at byte %d)", off)
			}
			return p2http.Invalid(field, "field %s holds invalid UTF-8 (at byte %d); an unpaired surrogate escape is invalid too", field, off)
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return p2http.Errorf(p2http.EINVALID, "the request body ends inside its JSON object")
		case field != "":
			return p2http.Invalid(field, "the request body is not valid JSON (in field %s, at byte %d)", field, off)
		default:
			return p2http.Errorf(p2http.EINVALID, "the request body is not valid JSON (at byte %d)", off)
		}
	case errors.As(err, &sem):
		field := fieldOf(sem.JSONPointer)
		if errors.Is(sem.Err, json.ErrUnknownName) {
			return p2http.Invalid(field, "unknown field %q", field)
		}
		if want := jsonTypeOf(sem.GoType); want != "" && field != "" {
			return p2http.Invalid(field, "field %s must be %s", field, want)
		}
		return p2http.Invalid(field, "field %s does not hold a value of the right JSON type", field)
	}
	return p2http.Errorf(p2http.EINVALID, "the request body is not a valid JSON object")
}

// fieldOf writes a JSON pointer ("/summary/message_count") as the dotted
// path problem documents name fields with ("summary.message_count").
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// invalidUTF8At returns the offset of the first byte of body that is not
// part of valid UTF-8, or -1.
func invalidUTF8At(body []byte) int {
	for i := 0; i < len(body); {
		if body[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// surrogateEscapeAt reports whether b starts with a \uXXXX escape of a
// UTF-16 surrogate: where the decoder stops at one, it is unpaired.
func surrogateEscapeAt(b []byte) bool {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return err == nil && 0xD800 <= n && n <= 0xDFFF
}

// jsonTypeOf names the JSON values a Go type decodes from, for messages.
func jsonTypeOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return ""
}
