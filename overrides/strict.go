package overrides

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
)

// strictDecode decodes JSON into v and refuses what v does not describe. Errors
// name where: a syntax error its line and column, an unknown key or a value of
// the wrong type its JSON path (tensors["conv1.weight"].encoding.scale).
func strictDecode(b []byte, v any) error {
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(b, se.Offset)
			return fmt.Errorf("line %d, column %d: %v", line, col, se)
		}
		return err
	}
	if err := checkKeys(generic, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			where := te.Field
			if where == "" {
				where = "the document"
			}
			return fmt.Errorf("%s: a JSON %s where %s is expected", where, te.Value, goTypeName(te.Type))
		}
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

func lineCol(b []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - (bytes.LastIndexByte(before, '\n') + 1)
}

func goTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// checkKeys walks decoded JSON against the Go type it will fill and names the
// first key the type has no field for, with the keys it does have.
func checkKeys(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(Values{}) {
		ok := true
		switch x := v.(type) {
		case float64:
		case []any:
			for _, e := range x {
				_, isNum := e.(float64)
				ok = ok && isNum
			}
		default:
			ok = false
		}
		if !ok {
			return fmt.Errorf("%s: a number or a list of numbers is expected", path)
		}
		return nil
	}
	if t == reflect.TypeOf(aimet06Entries{}) {
		// One object or a list of them: check the object as the list's only entry.
		if m, ok := v.(map[string]any); ok {
			return checkKeys(m, reflect.TypeOf(aimet06Entry{}), path)
		}
		t = reflect.TypeOf([]aimet06Entry{})
	}
	if v == nil {
		return nil // null leaves the field unset
	}
	if want, ok := leafMismatch(v, t); ok {
		where := path
		if where == "" {
			where = "the document"
		}
		return fmt.Errorf("%s: a JSON %s where %s is expected", where, want, goTypeName(t))
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ft, ok := fields[k]
			p := joinPath(path, k)
			if !ok {
				return fmt.Errorf("%s: unknown key (known here: %s)", p, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			if err := checkKeys(m[k], ft, p); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := checkKeys(m[k], t.Elem(), fmt.Sprintf("%s[%q]", path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range a {
			if err := checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// leafMismatch reports the JSON type of v when a field of type t cannot hold
// it, so type errors name the full path (the decoder's own errors do not
// count list indices).
func leafMismatch(v any, t reflect.Type) (string, bool) {
	got := "value"
	switch x := v.(type) {
	case string:
		got = "string"
	case bool:
		got = "bool"
	case []any:
		got = "array"
	case map[string]any:
		got = "object"
	case float64:
		got = "number"
		switch t.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return fmt.Sprintf("number %v", x), true
			}
			return "", false
		case reflect.Float32, reflect.Float64:
			return "", false
		}
	}
	ok := false
	switch t.Kind() {
	case reflect.Interface:
		ok = true
	case reflect.Bool:
		ok = got == "bool"
	case reflect.String:
		ok = got == "string"
	case reflect.Slice:
		ok = got == "array"
	case reflect.Struct, reflect.Map:
		ok = got == "object"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float32, reflect.Float64:
		ok = false // not a number (numbers returned above)
	default:
		ok = true
	}
	return got, !ok
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps a struct's JSON keys to their types (json.RawMessage and
// custom decoders are leaves).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		if ft == reflect.TypeOf(json.RawMessage{}) {
			ft = reflect.TypeOf((*any)(nil)).Elem() // a leaf of any JSON type
		}
		out[name] = ft
	}
	return out
}
