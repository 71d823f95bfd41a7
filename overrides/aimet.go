package overrides

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

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

// aimet06Entry is one encoding in AIMET's 0.6.1 format (one per channel). An
// entry with a type and no range (QNN's quantization_overrides) sets the type
// and leaves the range to calibration.
type aimet06Entry struct {
	Bitwidth *int   `json:"bitwidth,omitempty"`
	DType    string `json:"dtype"`
	// IsSymmetric is the string "True"/"False" AIMET writes, or a JSON bool.
	IsSymmetric any      `json:"is_symmetric,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Offset      *int64   `json:"offset,omitempty"`
	Scale       *float64 `json:"scale,omitempty"`
}

// aimet06Entries are one tensor's entries: a list, or one object standing for
// a one-entry list (the short form QNN write-ups use).
type aimet06Entries struct {
	list   []aimet06Entry
	object bool
}

func (e *aimet06Entries) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		e.object, e.list = true, make([]aimet06Entry, 1)
		return json.Unmarshal(b, &e.list[0])
	}
	return json.Unmarshal(b, &e.list)
}

func (e aimet06Entries) MarshalJSON() ([]byte, error) { return json.Marshal(e.list) }

type aimet06File struct {
	Version       string                    `json:"version"`
	Activations   map[string]aimet06Entries `json:"activation_encodings"`
	Params        map[string]aimet06Entries `json:"param_encodings"`
	Excluded      []string                  `json:"excluded_layers,omitempty"`
	QuantizerArgs json.RawMessage           `json:"quantizer_args,omitempty"`
}

// aimet10Entry is one named encoding in AIMET's 1.0.0 format; without scale
// and offset it is a type-only entry, as in 0.6.1.
type aimet10Entry struct {
	Name      string    `json:"name"`
	EncType   string    `json:"enc_type,omitempty"`
	DType     string    `json:"dtype"`
	BW        *int      `json:"bw,omitempty"`
	IsSym     any       `json:"is_sym,omitempty"`
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
		m    map[string]aimet06Entries
	}{{"activation_encodings", KindActivation, a.Activations}, {"param_encodings", KindWeight, a.Params}} {
		for _, name := range sortedNames(sec.m) {
			path := fmt.Sprintf("%s[%q]", sec.key, name)
			if _, dup := f.Tensors[name]; dup {
				return nil, fmt.Errorf("%s: the tensor is also in the other section", path)
			}
			t, err := from06(sec.m[name], path, sec.kind)
			if err != nil {
				return nil, err
			}
			t.Kind = sec.kind
			f.Tensors[name] = t
		}
	}
	return f, f.Validate()
}

// rangeFields names which of scale, offset, min and max an entry gives.
func rangeFields(scale, offset, lo, hi bool) (full, none bool, have string) {
	var got []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"scale", scale}, {"offset", offset}, {"min", lo}, {"max", hi}} {
		if f.set {
			got = append(got, f.name)
		}
	}
	return (scale && offset) || (lo && hi), len(got) == 0, strings.Join(got, " and ")
}

func from06(es aimet06Entries, path, kind string) (*Tensor, error) {
	if len(es.list) == 0 {
		return nil, fmt.Errorf("%s: an empty list", path)
	}
	at := func(i int) string {
		if es.object {
			return path
		}
		return fmt.Sprintf("%s[%d]", path, i)
	}
	var q qnnType
	var sym *bool
	scales := make([]float64, len(es.list))
	offsets := make([]int64, len(es.list))
	for i, e := range es.list {
		p := at(i)
		full, none, have := rangeFields(e.Scale != nil, e.Offset != nil, e.Min != nil, e.Max != nil)
		if i == 0 {
			var err error
			if q, err = parseQNNType(e.DType, e.Bitwidth, p+".dtype", p+".bitwidth", "bitwidth"); err != nil {
				return nil, err
			}
			if sym, err = parseSym(e.IsSymmetric, p+".is_symmetric"); err != nil {
				return nil, err
			}
			if q.float {
				if len(es.list) > 1 {
					return nil, fmt.Errorf("%s: a float entry is per tensor", at(1))
				}
				return &Tensor{Float: true}, nil
			}
			if none {
				if len(es.list) > 1 {
					return nil, fmt.Errorf("%s: a type-only entry (no scale, offset, min or max) is per tensor; per-channel entries give scale and offset", at(1))
				}
				return typeOnly(q, sym, kind, p)
			}
			if err := checkEncodingBits(q.bits, kind, p+".bitwidth"); err != nil {
				return nil, err
			}
		} else {
			if e.DType != es.list[0].DType || !sameInt(e.Bitwidth, es.list[0].Bitwidth) {
				return nil, fmt.Errorf("%s: bitwidth and dtype differ from entry 0", p)
			}
			s, err := parseSym(e.IsSymmetric, p+".is_symmetric")
			if err != nil {
				return nil, err
			}
			if (s != nil && *s) != (sym != nil && *sym) {
				return nil, fmt.Errorf("%s.is_symmetric: differs from entry 0", p)
			}
		}
		switch {
		case e.Scale != nil && e.Offset != nil:
			scales[i], offsets[i] = *e.Scale, *e.Offset
		case e.Min != nil && e.Max != nil:
			if *e.Min > *e.Max {
				return nil, fmt.Errorf("%s.min: %v is above max %v", p, *e.Min, *e.Max)
			}
			// The grid AIMET derives from min/max: offset = round(min/scale).
			scales[i] = (*e.Max - *e.Min) / float64(int64(1)<<q.bits-1)
			if scales[i] > 0 {
				offsets[i] = int64(math.Round(*e.Min / scales[i]))
			}
		case !full && none:
			return nil, fmt.Errorf("%s: needs scale and offset, or min and max, as entry 0 has them", p)
		default:
			return nil, fmt.Errorf("%s: needs scale and offset, or min and max, or none of them for a type-only entry whose range is calibrated (it has only %s)", p, have)
		}
	}
	s := sym != nil && *sym
	enc, err := toEncoding(q.bits, q.signedOr(s), scales, offsets, func(field string, i int) string { return fmt.Sprintf("%s.%s", at(i), field) })
	if err != nil {
		return nil, err
	}
	return &Tensor{Encoding: enc}, nil
}

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

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
			t, err := from10(e, path, sec.kind)
			if err != nil {
				return nil, err
			}
			t.Kind = sec.kind
			f.Tensors[e.Name] = t
		}
	}
	return f, f.Validate()
}

func from10(e aimet10Entry, path, kind string) (*Tensor, error) {
	q, err := parseQNNType(e.DType, e.BW, path+".dtype", path+".bw", "bw")
	if err != nil {
		return nil, err
	}
	sym, err := parseSym(e.IsSym, path+".is_sym")
	if err != nil {
		return nil, err
	}
	if e.EncType != "PER_BLOCK" && e.BlockSize != 0 {
		return nil, fmt.Errorf("%s.block_size: only PER_BLOCK has a block size", path)
	}
	if q.float {
		if len(e.Scale) > 0 || len(e.Offset) > 0 {
			return nil, fmt.Errorf("%s: a FLOAT entry has no scale or offset", path)
		}
		return &Tensor{Float: true}, nil
	}
	if len(e.Scale) == 0 && len(e.Offset) == 0 {
		t, err := typeOnly(q, sym, kind, path)
		if err != nil {
			return nil, err
		}
		// The granularity of a type-only weight entry; activations are per tensor.
		switch e.EncType {
		case "", "PER_TENSOR":
			if kind == KindWeight && e.EncType != "" && t.DType != "int32" {
				t.Granularity = PerTensor
			}
		case "PER_CHANNEL", "PER_BLOCK":
			if kind != KindWeight || t.DType == "int32" {
				return nil, fmt.Errorf("%s.enc_type: %s is for weights; activations and biases are per tensor", path, e.EncType)
			}
			t.Granularity = PerChannel
			if e.EncType == "PER_BLOCK" {
				if e.BlockSize <= 0 {
					return nil, fmt.Errorf("%s.block_size: PER_BLOCK needs a positive block size", path)
				}
				t.Granularity, t.BlockSize = PerBlock, e.BlockSize
			}
		default:
			return nil, fmt.Errorf("%s.enc_type: %q is not PER_TENSOR, PER_CHANNEL or PER_BLOCK", path, e.EncType)
		}
		return t, nil
	}
	if err := checkEncodingBits(q.bits, kind, path+".bw"); err != nil {
		return nil, err
	}
	if sym == nil {
		return nil, fmt.Errorf("%s.is_sym: missing", path)
	}
	if len(e.Scale) == 0 || len(e.Offset) != len(e.Scale) {
		return nil, fmt.Errorf("%s.offset: %d values for %d scales (both are needed, one per channel or block; or neither for a type-only entry whose range is calibrated)", path, len(e.Offset), len(e.Scale))
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
	enc, err := toEncoding(q.bits, q.signedOr(*sym), e.Scale, e.Offset, func(field string, i int) string { return fmt.Sprintf("%s.%s[%d]", path, field, i) })
	if err != nil {
		return nil, err
	}
	enc.BlockSize = e.BlockSize
	if e.EncType != "PER_TENSOR" {
		enc.AxisFromModel = true
	}
	return &Tensor{Encoding: enc}, nil
}

// qnnType is what an entry's dtype and bit width say: float, or an integer
// width with, for the combined names ("int16", "uint8"), its signedness.
type qnnType struct {
	float  bool
	bits   int
	signed *bool
}

// signedOr is the signedness to store: the dtype's, else the one that makes
// the grid's zero point the usual one (symmetric grids signed, asymmetric
// ones unsigned).
func (q qnnType) signedOr(sym bool) bool {
	if q.signed != nil {
		return *q.signed
	}
	return sym
}

var qnnCombined = map[string]struct {
	bits   int
	signed bool
}{"int4": {4, true}, "int8": {8, true}, "int16": {16, true}, "uint8": {8, false}, "uint16": {16, false}}

// parseQNNType reads dtype ("int" or "float" with a bit width, or a combined
// name; any case) and the bit width; bwKey names the width in messages.
func parseQNNType(dtype string, bw *int, dtypePath, bwPath, bwKey string) (qnnType, error) {
	switch d := strings.ToLower(dtype); d {
	case "float":
		if bw == nil {
			return qnnType{}, fmt.Errorf("%s: missing (16 or 32 for a float entry)", bwPath)
		}
		if *bw != 16 && *bw != 32 {
			return qnnType{}, fmt.Errorf("%s: %d is not a float width (16 or 32)", bwPath, *bw)
		}
		return qnnType{float: true, bits: *bw}, nil
	case "int":
		if bw == nil {
			return qnnType{}, fmt.Errorf("%s: missing (4, 8 or 16; 32 for a bias)", bwPath)
		}
		switch *bw {
		case 4, 8, 16, 32:
			return qnnType{bits: *bw}, nil
		}
		return qnnType{}, fmt.Errorf("%s: %d is not supported (use 4, 8 or 16)", bwPath, *bw)
	default:
		c, ok := qnnCombined[d]
		if !ok {
			return qnnType{}, fmt.Errorf("%s: %q is not supported (use \"int\" or \"float\" with a %s, or int4, int8, int16, uint8, uint16)", dtypePath, dtype, bwKey)
		}
		if bw != nil && *bw != c.bits {
			return qnnType{}, fmt.Errorf("%s: %d contradicts dtype %q (%d bits)", bwPath, *bw, dtype, c.bits)
		}
		return qnnType{bits: c.bits, signed: &c.signed}, nil
	}
}

// parseSym reads is_symmetric / is_sym: a JSON bool or the strings AIMET writes.
func parseSym(v any, path string) (*bool, error) {
	t, f := true, false
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return &x, nil
	case string:
		switch x {
		case "True", "true":
			return &t, nil
		case "False", "false":
			return &f, nil
		}
	}
	b, _ := json.Marshal(v)
	return nil, fmt.Errorf("%s: %s is not true, false, \"True\" or \"False\"", path, b)
}

// typeOnly maps an entry without a range to the tensor's type, calibrated by
// the converter. "int" with a width takes its signedness from the symmetry as
// encodings do (absent is asymmetric, QNN's default); a combined dtype states
// it, and is_symmetric, when given, the symmetry. 32-bit integers are biases,
// which onnxq stores as int32 with scale input scale x weight scale.
func typeOnly(q qnnType, sym *bool, kind, path string) (*Tensor, error) {
	if q.bits == 32 {
		if kind != KindWeight {
			return nil, fmt.Errorf("%s: 32-bit integers are for biases (param_encodings); activations use 4, 8 or 16 bits", path)
		}
		return &Tensor{DType: "int32"}, nil
	}
	prefix := "uint"
	if q.signedOr(sym != nil && *sym) {
		prefix = "int"
	}
	t := &Tensor{DType: fmt.Sprintf("%s%d", prefix, q.bits), Symmetric: sym}
	if q.signed == nil && sym == nil {
		f := false
		t.Symmetric = &f
	}
	return t, nil
}

// checkEncodingBits refuses widths an explicit encoding cannot have.
func checkEncodingBits(bw int, kind, path string) error {
	if bw == 32 {
		if kind == KindWeight {
			return fmt.Errorf("%s: a 32-bit encoding is a bias's; onnxq derives bias scales (input scale x weight scale), so give the type only", path)
		}
		return fmt.Errorf("%s: 32 is not supported (use 4, 8 or 16)", path)
	}
	return nil
}

// toEncoding maps AIMET's unsigned scale/offset to an ONNX encoding of the
// given signedness: the same grid, the zero point shifted by 2^(bw-1) when
// signed.
func toEncoding(bw int, signed bool, scales []float64, offsets []int64, at func(field string, i int) string) (*Encoding, error) {
	dt := map[bool]map[int]graph.DataType{
		true:  {4: graph.Int4, 8: graph.Int8, 16: graph.Int16},
		false: {4: graph.Uint4, 8: graph.Uint8, 16: graph.Uint16},
	}[signed][bw]
	half := int64(1) << (bw - 1)
	enc := &Encoding{DType: dt.Short(), Scale: make([]float32, len(scales)), ZeroPoint: make([]int64, len(scales))}
	for i, s := range scales {
		zp := -offsets[i]
		if signed {
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
// activation and param sections by Kind; they hold per-tensor entries only, so
// node, op-type and default rules must be resolved to tensors first (see
// TypeOnlyFile).
func (f *File) Export(d Dialect) ([]byte, error) {
	if (d == AIMET06 || d == AIMET10) && (f.Defaults != nil || len(f.OpTypes) > 0 || len(f.Nodes) > 0 || f.Skip != nil) {
		return nil, fmt.Errorf("AIMET/QNN files have per-tensor entries only: resolve defaults, op_types, nodes and skip to tensor names first")
	}
	var v any
	switch d {
	case ONNXQ:
		f.Version = Version
		v = f
	case AIMET06:
		a := aimet06File{Version: "0.6.1", Activations: map[string]aimet06Entries{}, Params: map[string]aimet06Entries{}}
		for _, name := range f.Names() {
			t := f.Tensors[name]
			sec := a.Activations
			if t.Kind == KindWeight {
				sec = a.Params
			}
			bits := func(n int) *int { return &n }
			switch {
			case t.Float || t.DType == "float":
				sec[name] = aimet06Entries{list: []aimet06Entry{{Bitwidth: bits(32), DType: "float"}}}
			case t.Encoding != nil:
				if t.Encoding.BlockSize > 0 {
					return nil, fmt.Errorf("tensors[%q]: AIMET 0.6.1 has no blocked encodings; export as aimet-1.0", name)
				}
				bw, sym, offs, mins, maxs := fromEncoding(t.Encoding)
				var es []aimet06Entry
				for i := range offs {
					s := float64(t.Encoding.Scale[i])
					es = append(es, aimet06Entry{Bitwidth: bits(bw), DType: "int", IsSymmetric: pyBool(sym),
						Min: &mins[i], Max: &maxs[i], Offset: &offs[i], Scale: &s})
				}
				sec[name] = aimet06Entries{list: es}
			default:
				dtype, bw, sym, err := qnnTypeOf(name, t, false)
				if err != nil {
					return nil, err
				}
				e := aimet06Entry{Bitwidth: bits(bw), DType: dtype}
				if sym != nil {
					e.IsSymmetric = pyBool(*sym)
				}
				sec[name] = aimet06Entries{list: []aimet06Entry{e}}
			}
		}
		v = a
	case AIMET10:
		a := aimet10File{Version: "1.0.0", Activations: []aimet10Entry{}, Params: []aimet10Entry{}}
		for _, name := range f.Names() {
			t := f.Tensors[name]
			var e aimet10Entry
			switch {
			case t.Float || t.DType == "float":
				bw := 32
				e = aimet10Entry{Name: name, DType: "FLOAT", BW: &bw}
			case t.Encoding != nil:
				bw, sym, offs, _, _ := fromEncoding(t.Encoding)
				e = aimet10Entry{Name: name, EncType: "PER_TENSOR", DType: "INT", BW: &bw, IsSym: sym, Offset: offs, BlockSize: t.Encoding.BlockSize}
				for _, s := range t.Encoding.Scale {
					e.Scale = append(e.Scale, float64(s))
				}
				if t.Encoding.BlockSize > 0 {
					e.EncType = "PER_BLOCK"
				} else if len(offs) > 1 {
					e.EncType = "PER_CHANNEL"
				}
			default:
				dtype, bw, sym, err := qnnTypeOf(name, t, true)
				if err != nil {
					return nil, err
				}
				e = aimet10Entry{Name: name, DType: strings.ToUpper(dtype), BW: &bw, BlockSize: t.BlockSize}
				if dtype != "int" {
					e.DType = dtype
				}
				if sym != nil {
					e.IsSym = *sym
				}
				switch t.Granularity {
				case PerTensor:
					e.EncType = "PER_TENSOR"
				case PerChannel:
					e.EncType = "PER_CHANNEL"
				case PerBlock:
					e.EncType = "PER_BLOCK"
				}
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

// pyBool is how AIMET 0.6.1 files spell a flag.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// qnnTypeOf states a type-only tensor as a QNN entry: "int" with the width
// where the symmetry implies the signedness the reader infers (symmetric
// signed, asymmetric unsigned), else the combined dtype, which keeps the exact
// ONNX type. Settings a type-only entry cannot carry are errors, not dropped;
// granularity and block size only fit AIMET 1.0.0 (withGranularity).
func qnnTypeOf(name string, t *Tensor, withGranularity bool) (dtype string, bw int, sym *bool, err error) {
	p := fmt.Sprintf("tensors[%q]", name)
	switch {
	case t.DType == "":
		return "", 0, nil, fmt.Errorf("%s: no type, encoding or float flag to write in an AIMET/QNN file", p)
	case t.Min != nil || t.Max != nil:
		return "", 0, nil, fmt.Errorf("%s.min: AIMET/QNN type-only entries have no pinned range", p)
	case t.Observer != nil:
		return "", 0, nil, fmt.Errorf("%s.observer: AIMET/QNN files do not choose observers", p)
	case t.Axis != nil:
		return "", 0, nil, fmt.Errorf("%s.axis: AIMET/QNN files take the axis from the model", p)
	case !withGranularity && (t.Granularity != "" || t.BlockSize != 0):
		return "", 0, nil, fmt.Errorf("%s.granularity: AIMET 0.6.1 has no granularity; export as aimet-1.0", p)
	case t.DType == "int32":
		return "int", 32, nil, nil
	}
	dt, perr := graph.ParseDataType(t.DType)
	r, ok := ranges[dt]
	if perr != nil || !ok {
		return "", 0, nil, fmt.Errorf("%s.dtype: %q has no AIMET/QNN form", p, t.DType)
	}
	signed := r[0] < 0
	if t.Symmetric != nil && *t.Symmetric == signed {
		return "int", dt.BitWidth(), t.Symmetric, nil
	}
	if _, ok := qnnCombined[dt.Short()]; !ok {
		return "", 0, nil, fmt.Errorf("%s.dtype: %s without symmetric %v has no AIMET/QNN form (QNN names int4, int8, int16, uint8, uint16)", p, dt.Short(), signed)
	}
	return dt.Short(), dt.BitWidth(), t.Symmetric, nil
}

func sortedNames[T any](m map[string]T) []string { return slices.Sorted(maps.Keys(m)) }
