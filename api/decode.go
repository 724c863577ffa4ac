package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/p2http/p2http"
)

// decode reads one JSON object into v, refusing unknown fields, trailing
// data and bodies over the limit. On failure it writes the problem and
// returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		s.problem(w, r, p2http.Errorf(codeBodyTooLarge, "the request body is limited to %d bytes", s.cfg.MaxBodyBytes))
	case errors.Is(err, io.EOF):
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "a JSON request body is required"))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "the request body is not valid JSON"))
	case errors.As(err, &typeErr):
		s.problem(w, r, p2http.Invalid(typeErr.Field, "field %s must be of JSON type %s", typeErr.Field, jsonType(typeErr.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		s.problem(w, r, p2http.Invalid(field, "unknown field %q", field))
	default:
		s.problem(w, r, p2http.Errorf(p2http.EINVALID, "the request body must be one JSON object: %s", err))
	}
	return false
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "ptr", "struct", "map":
		return "object"
	case "int", "int64", "uint", "float64":
		return "number"
	}
	return kind
}
