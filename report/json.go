package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/internal/atomicfile"
)

// WriteJSON writes d as indented JSON. encoding/json refuses non-finite
// floats, and an SQNR of +Inf (no error) is a real result: such values are
// written as the strings "inf", "-inf" and "nan".
func WriteJSON(path string, d *Data) error {
	if d == nil {
		return fmt.Errorf("report: no data")
	}
	b, err := marshalIndent(d)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, b); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func marshalIndent(v any) ([]byte, error) {
	raw, err := marshal(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// The report types marshal through the same encoder, so that a program
// embedding them in its own JSON gets the same spelling of inf and nan.

func (d Data) MarshalJSON() ([]byte, error)           { return marshal(d) }
func (m Metric) MarshalJSON() ([]byte, error)         { return marshal(m) }
func (t TensorStats) MarshalJSON() ([]byte, error)    { return marshal(t) }
func (r SensitivityRow) MarshalJSON() ([]byte, error) { return marshal(r) }
func (p TunePoint) MarshalJSON() ([]byte, error)      { return marshal(p) }

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, reflect.ValueOf(v)); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Bytes(), nil
}

// encode writes v as JSON like encoding/json does for the report types
// (field names from the json tag, omitempty), floats excepted. It walks
// struct fields itself, so the MarshalJSON methods above do not recurse.
func encode(b *bytes.Buffer, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			b.WriteString(`"nan"`)
		case math.IsInf(f, 1):
			b.WriteString(`"inf"`)
		case math.IsInf(f, -1):
			b.WriteString(`"-inf"`)
		default:
			b.WriteString(strconv.FormatFloat(f, 'g', -1, v.Type().Bits()))
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encode(b, v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encode(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case reflect.Struct:
		b.WriteByte('{')
		first := true
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			fv := v.Field(i)
			if opts == "omitempty" && fv.IsZero() || opts == "omitempty" && fv.Kind() == reflect.Slice && fv.Len() == 0 {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			key, _ := json.Marshal(name)
			b.Write(key)
			b.WriteByte(':')
			if err := encode(b, fv); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s, err := json.Marshal(v.Interface())
		if err != nil {
			return err
		}
		b.Write(s)
	default:
		return fmt.Errorf("cannot encode %s as JSON", v.Type())
	}
	return nil
}
