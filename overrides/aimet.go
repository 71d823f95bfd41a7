package overrides

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Dialect names an encodings file format.
type Dialect string

const (
	ONNXQ   Dialect = "onnxq"
	AIMET06 Dialect = "aimet-0.6"
	AIMET10 Dialect = "aimet-1.0"
	ORT     Dialect = "ort"
)

// Dialects lists the formats Export writes, for help texts.
var Dialects = []Dialect{ONNXQ, AIMET10, AIMET06, ORT}

// AIMET and QNN store every integer grid as unsigned: q = round(x/scale) - offset
// on [0, 2^bw-1], so offset is the negated zero point of the unsigned grid. A
// symmetric signed ONNX encoding (int8, zero point 0) is offset -2^(bw-1) there.
// AIMET files do not carry signedness, so onnxq reads symmetric entries as
// signed types and asymmetric ones as unsigned; both give the same real grid.

// aimet06Entry is one encoding in AIMET's 0.6.1 format (one per channel).
type aimet06Entry struct {
	Bitwidth    int      `json:"bitwidth"`
	DType       string   `json:"dtype"`
	IsSymmetric string   `json:"is_symmetric,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Offset      *int64   `json:"offset,omitempty"`
	Scale       *float64 `json:"scale,omitempty"`
}

type aimet06File struct {
	Version       string                    `json:"version"`
	Activations   map[string][]aimet06Entry `json:"activation_encodings"`
	Params        map[string][]aimet06Entry `json:"param_encodings"`
	Excluded      []string                  `json:"excluded_layers,omitempty"`
	QuantizerArgs json.RawMessage           `json:"quantizer_args,omitempty"`
}

// aimet10Entry is one named encoding in AIMET's 1.0.0 format.
type aimet10Entry struct {
	Name      string    `json:"name"`
	EncType   string    `json:"enc_type,omitempty"`
	DType     string    `json:"dtype"`
	BW        int       `json:"bw"`
	IsSym     *bool     `json:"is_sym,omitempty"`
	Scale     []float64 `json:"scale,omitempty"`
	Offset    []int64   `json:"offset,omitempty"`
	BlockSize int       `json:"block_size,omitempty"`
}

type aimet10File struct {
	Version       string          `json:"version"`
	Activations   []aimet10Entry  `json:"activation_encodings"`
	Params        []aimet10Entry  `json:"param_encodings"`
	Excluded      []string        `json:"excluded_layers,omitempty"`
	QuantizerArgs json.RawMessage `json:"quantizer_args,omitempty"`
}

// LoadAny reads an encodings file in any supported dialect.
func LoadAny(path string) (*File, Dialect, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("overrides: %w", err)
	}
	f, d, err := ParseAny(b)
	if err != nil {
		return nil, d, fmt.Errorf("overrides %s: %w", path, err)
	}
	return f, d, nil
}

// ParseAny detects the dialect (ORT tensor overrides map every name to a
// list and have no version; AIMET files have activation_encodings or
// param_encodings at the top; the version, or a list versus a map, tells 1.0
// from 0.6) and converts the file to onnxq's form.
func ParseAny(b []byte) (*File, Dialect, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, "", fmt.Errorf("not a JSON object: %v", err)
	}
	_, ha := top["activation_encodings"]
	_, hp := top["param_encodings"]
	_, hv := top["version"]
	if !ha && !hp && !hv && len(top) > 0 && allLists(top) {
		f, err := parseORT(b)
		return f, ORT, err
	}
	if !ha && !hp {
		f, err := Parse(b)
		return f, ONNXQ, err
	}
	var ver string
	if v, ok := top["version"]; ok {
		if err := json.Unmarshal(v, &ver); err != nil {
			return nil, "", fmt.Errorf("version: must be a string such as \"1.0.0\" in an AIMET file")
		}
	}
	switch {
	case ver == "1.0.0" || (ver == "" && isList(top["activation_encodings"], top["param_encodings"])):
		f, err := parseAIMET10(b)
		return f, AIMET10, err
	case ver == "0.6.1" || ver == "":
		f, err := parseAIMET06(b)
		return f, AIMET06, err
	}
	return nil, "", fmt.Errorf("version: AIMET encodings version %q is not supported (0.6.1 and 1.0.0 are)", ver)
}

// allLists: ORT tensor overrides map every name to a list.
func allLists(top map[string]json.RawMessage) bool {
	for _, r := range top {
		if t := bytes.TrimSpace(r); len(t) == 0 || t[0] != '[' {
			return false
		}
	}
	return true
}

func isList(raws ...json.RawMessage) bool {
	for _, r := range raws {
		if t := bytes.TrimSpace(r); len(t) > 0 {
			return t[0] == '['
		}
	}
	return false
}

func parseAIMET06(b []byte) (*File, error) {
	var a aimet06File
	if err := strictDecode(b, &a); err != nil {
		return nil, err
	}
	f := &File{Version: Version, Tensors: map[string]*Tensor{}}
	for _, sec := range []struct {
		key  string
		kind string
		m    map[string][]aimet06Entry
	}{{"activation_encodings", KindActivation, a.Activations}, {"param_encodings", KindWeight, a.Params}} {
		for _, name := range sortedNames(sec.m) {
			path := fmt.Sprintf("%s[%q]", sec.key, name)
			if _, dup := f.Tensors[name]; dup {
				return nil, fmt.Errorf("%s: the tensor is also in the other section", path)
			}
			t, err := from06(sec.m[name], path)
			if err != nil {
				return nil, err
			}
			t.Kind = sec.kind
			f.Tensors[name] = t
		}
	}
	return f, f.Validate()
}

func from06(es []aimet06Entry, path string) (*Tensor, error) {
	if len(es) == 0 {
		return nil, fmt.Errorf("%s: an empty list", path)
	}
	var bw int
	var sym bool
	var dtype string
	scales := make([]float64, len(es))
	offsets := make([]int64, len(es))
	for i, e := range es {
		p := fmt.Sprintf("%s[%d]", path, i)
		if i == 0 {
			bw, dtype = e.Bitwidth, e.DType
		} else if e.Bitwidth != bw || e.DType != dtype {
			return nil, fmt.Errorf("%s: bitwidth and dtype differ from entry 0", p)
		}
		switch e.DType {
		case "float":
			if e.Bitwidth != 16 && e.Bitwidth != 32 {
				return nil, fmt.Errorf("%s.bitwidth: %d is not a float width (16 or 32)", p, e.Bitwidth)
			}
			if len(es) > 1 {
				return nil, fmt.Errorf("%s: a float entry is per tensor", p)
			}
			return &Tensor{Float: true}, nil
		case "int":
		default:
			return nil, fmt.Errorf("%s.dtype: %q is not \"int\" or \"float\"", p, e.DType)
		}
		s := false
		switch e.IsSymmetric {
		case "True", "true":
			s = true
		case "False", "false", "":
		default:
			return nil, fmt.Errorf("%s.is_symmetric: %q is not \"True\" or \"False\"", p, e.IsSymmetric)
		}
		if i == 0 {
			sym = s
		} else if s != sym {
			return nil, fmt.Errorf("%s.is_symmetric: differs from entry 0", p)
		}
		if err := checkBits(bw, p+".bitwidth"); err != nil {
			return nil, err
		}
		switch {
		case e.Scale != nil && e.Offset != nil:
			scales[i], offsets[i] = *e.Scale, *e.Offset
		case e.Min != nil && e.Max != nil:
			if *e.Min > *e.Max {
				return nil, fmt.Errorf("%s.min: %v is above max %v", p, *e.Min, *e.Max)
			}
			// The grid AIMET derives from min/max: offset = round(min/scale).
			scales[i] = (*e.Max - *e.Min) / float64(int64(1)<<bw-1)
			if scales[i] > 0 {
				offsets[i] = int64(math.Round(*e.Min / scales[i]))
			}
		default:
			return nil, fmt.Errorf("%s: needs scale and offset, or min and max", p)
		}
	}
	enc, err := toEncoding(bw, sym, scales, offsets, func(field string, i int) string { return fmt.Sprintf("%s[%d].%s", path, i, field) })
	if err != nil {
		return nil, err
	}
	return &Tensor{Encoding: enc}, nil
}

func parseAIMET10(b []byte) (*File, error) {
	var a aimet10File
	if err := strictDecode(b, &a); err != nil {
		return nil, err
	}
	f := &File{Version: Version, Tensors: map[string]*Tensor{}}
	for _, sec := range []struct {
		key  string
		kind string
		es   []aimet10Entry
	}{{"activation_encodings", KindActivation, a.Activations}, {"param_encodings", KindWeight, a.Params}} {
		for i, e := range sec.es {
			path := fmt.Sprintf("%s[%d]", sec.key, i)
			if e.Name == "" {
				return nil, fmt.Errorf("%s.name: missing", path)
			}
			if _, dup := f.Tensors[e.Name]; dup {
				return nil, fmt.Errorf("%s: %q is listed twice", path, e.Name)
			}
			t, err := from10(e, path)
			if err != nil {
				return nil, err
			}
			t.Kind = sec.kind
			f.Tensors[e.Name] = t
		}
	}
	return f, f.Validate()
}

func from10(e aimet10Entry, path string) (*Tensor, error) {
	switch e.DType {
	case "FLOAT":
		if e.BW != 16 && e.BW != 32 {
			return nil, fmt.Errorf("%s.bw: %d is not a float width (16 or 32)", path, e.BW)
		}
		if len(e.Scale) > 0 || len(e.Offset) > 0 {
			return nil, fmt.Errorf("%s: a FLOAT entry has no scale or offset", path)
		}
		return &Tensor{Float: true}, nil
	case "INT":
	default:
		return nil, fmt.Errorf("%s.dtype: %q is not \"INT\" or \"FLOAT\"", path, e.DType)
	}
	if err := checkBits(e.BW, path+".bw"); err != nil {
		return nil, err
	}
	if e.IsSym == nil {
		return nil, fmt.Errorf("%s.is_sym: missing", path)
	}
	if len(e.Scale) == 0 || len(e.Offset) != len(e.Scale) {
		return nil, fmt.Errorf("%s.offset: %d values for %d scales (both are needed, one per channel or block)", path, len(e.Offset), len(e.Scale))
	}
	switch e.EncType {
	case "PER_TENSOR":
		if len(e.Scale) != 1 {
			return nil, fmt.Errorf("%s.scale: PER_TENSOR has one scale, not %d", path, len(e.Scale))
		}
	case "PER_CHANNEL":
	case "PER_BLOCK":
		if e.BlockSize <= 0 {
			return nil, fmt.Errorf("%s.block_size: PER_BLOCK needs a positive block size", path)
		}
	default:
		return nil, fmt.Errorf("%s.enc_type: %q is not PER_TENSOR, PER_CHANNEL or PER_BLOCK", path, e.EncType)
	}
	if e.EncType != "PER_BLOCK" && e.BlockSize != 0 {
		return nil, fmt.Errorf("%s.block_size: only PER_BLOCK has a block size", path)
	}
	enc, err := toEncoding(e.BW, *e.IsSym, e.Scale, e.Offset, func(field string, i int) string { return fmt.Sprintf("%s.%s[%d]", path, field, i) })
	if err != nil {
		return nil, err
	}
	enc.BlockSize = e.BlockSize
	if e.EncType != "PER_TENSOR" {
		enc.AxisFromModel = true
	}
	return &Tensor{Encoding: enc}, nil
}

func checkBits(bw int, path string) error {
	switch bw {
	case 4, 8, 16:
		return nil
	}
	return fmt.Errorf("%s: %d-bit integers are not supported (4, 8 or 16)", path, bw)
}

// toEncoding maps AIMET's unsigned scale/offset to an ONNX encoding: symmetric
// grids become signed types, asymmetric ones unsigned.
func toEncoding(bw int, sym bool, scales []float64, offsets []int64, at func(field string, i int) string) (*Encoding, error) {
	dt := map[bool]map[int]graph.DataType{
		true:  {4: graph.Int4, 8: graph.Int8, 16: graph.Int16},
		false: {4: graph.Uint4, 8: graph.Uint8, 16: graph.Uint16},
	}[sym][bw]
	half := int64(1) << (bw - 1)
	enc := &Encoding{DType: dt.Short(), Scale: make([]float32, len(scales)), ZeroPoint: make([]int64, len(scales))}
	for i, s := range scales {
		zp := -offsets[i]
		if sym {
			zp -= half
		}
		r := ranges[dt]
		if zp < r[0] || zp > r[1] {
			return nil, fmt.Errorf("%s: %d puts the zero point outside the %d-bit grid", at("offset", i), offsets[i], bw)
		}
		if !(s > 0) || math.IsInf(s, 0) || float32(s) == 0 {
			return nil, fmt.Errorf("%s: %v must be positive and finite", at("scale", i), s)
		}
		enc.Scale[i], enc.ZeroPoint[i] = float32(s), zp
	}
	if len(scales) > 1 {
		enc.AxisFromModel = true
	}
	return enc, nil
}

// fromEncoding gives AIMET's view of an encoding: bit width, symmetry and the
// per-channel offsets (negated unsigned zero points).
func fromEncoding(e *Encoding) (bw int, sym bool, offsets []int64, mins, maxs []float64) {
	dt := e.Type()
	bw = dt.BitWidth()
	signed := ranges[dt][0] < 0
	half := int64(1) << (bw - 1)
	sym = signed
	for i, z := range e.ZeroPoint {
		if z != 0 {
			sym = false
		}
		off := -z
		if signed {
			off -= half
		}
		offsets = append(offsets, off)
		s := float64(e.Scale[i])
		mins = append(mins, s*float64(off))
		maxs = append(maxs, s*float64(int64(1)<<bw-1+off))
	}
	return
}

// Export renders f in the given dialect. AIMET files sort tensors into
// activation and param sections by Kind.
func (f *File) Export(d Dialect) ([]byte, error) {
	var v any
	switch d {
	case ONNXQ:
		f.Version = Version
		v = f
	case AIMET06:
		a := aimet06File{Version: "0.6.1", Activations: map[string][]aimet06Entry{}, Params: map[string][]aimet06Entry{}}
		for _, name := range f.Names() {
			t := f.Tensors[name]
			sec := a.Activations
			if t.Kind == KindWeight {
				sec = a.Params
			}
			if t.Float {
				sec[name] = []aimet06Entry{{Bitwidth: 32, DType: "float"}}
				continue
			}
			if t.Encoding == nil {
				continue
			}
			if t.Encoding.BlockSize > 0 {
				return nil, fmt.Errorf("tensors[%q]: AIMET 0.6.1 has no blocked encodings; export as aimet-1.0", name)
			}
			bw, sym, offs, mins, maxs := fromEncoding(t.Encoding)
			symS := "False"
			if sym {
				symS = "True"
			}
			for i := range offs {
				s := float64(t.Encoding.Scale[i])
				sec[name] = append(sec[name], aimet06Entry{Bitwidth: bw, DType: "int", IsSymmetric: symS,
					Min: &mins[i], Max: &maxs[i], Offset: &offs[i], Scale: &s})
			}
		}
		v = a
	case AIMET10:
		a := aimet10File{Version: "1.0.0", Activations: []aimet10Entry{}, Params: []aimet10Entry{}}
		for _, name := range f.Names() {
			t := f.Tensors[name]
			var e aimet10Entry
			switch {
			case t.Float:
				e = aimet10Entry{Name: name, DType: "FLOAT", BW: 32}
			case t.Encoding != nil:
				bw, sym, offs, _, _ := fromEncoding(t.Encoding)
				e = aimet10Entry{Name: name, EncType: "PER_TENSOR", DType: "INT", BW: bw, IsSym: &sym, Offset: offs, BlockSize: t.Encoding.BlockSize}
				for _, s := range t.Encoding.Scale {
					e.Scale = append(e.Scale, float64(s))
				}
				if t.Encoding.BlockSize > 0 {
					e.EncType = "PER_BLOCK"
				} else if len(offs) > 1 {
					e.EncType = "PER_CHANNEL"
				}
			default:
				continue
			}
			if t.Kind == KindWeight {
				a.Params = append(a.Params, e)
			} else {
				a.Activations = append(a.Activations, e)
			}
		}
		v = a
	case ORT:
		o := map[string][]ortEntry{}
		for _, name := range f.Names() {
			es, err := toORT(name, f.Tensors[name])
			if err != nil {
				return nil, err
			}
			o[name] = es
		}
		v = o
	default:
		return nil, fmt.Errorf("format %q is not one of onnxq, aimet-1.0, aimet-0.6, ort", d)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func sortedNames[T any](m map[string]T) []string { return slices.Sorted(maps.Keys(m)) }
