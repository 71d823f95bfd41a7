package overrides

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func mustLoadAny(t *testing.T, path string, want Dialect) *File {
	t.Helper()
	f, d, err := LoadAny(path)
	if err != nil {
		t.Fatal(err)
	}
	if d != want {
		t.Fatalf("%s: dialect %s, want %s", path, d, want)
	}
	return f
}

func checkEnc(t *testing.T, f *File, name, dtype string, scale []float32, zp []int64, kind string, fromModel bool) {
	t.Helper()
	tt := f.Tensors[name]
	if tt == nil || tt.Encoding == nil {
		t.Fatalf("%s: no encoding", name)
	}
	e := tt.Encoding
	if e.DType != dtype || len(e.Scale) != len(scale) || tt.Kind != kind || e.AxisFromModel != fromModel {
		t.Fatalf("%s: got %s %v %v kind %q axis-from-model %v", name, e.DType, e.Scale, e.ZeroPoint, tt.Kind, e.AxisFromModel)
	}
	for i := range scale {
		if e.Scale[i] != scale[i] || e.ZeroPoint[i] != zp[i] {
			t.Errorf("%s[%d]: scale %v zp %d, want %v %d", name, i, e.Scale[i], e.ZeroPoint[i], scale[i], zp[i])
		}
	}
}

// TestAIMET06: AIMET's offset is the negated zero point of an unsigned grid;
// symmetric entries (offset -2^(bw-1)) become signed types with zero point 0.
func TestAIMET06(t *testing.T) {
	f := mustLoadAny(t, "testdata/aimet_0.6.1.json", AIMET06)
	checkEnc(t, f, "input", "uint8", []float32{0.01}, []int64{0}, KindActivation, false)
	checkEnc(t, f, "relu_out", "uint16", []float32{9.918364e-05}, []int64{5041}, KindActivation, false)
	checkEnc(t, f, "conv1.weight", "int8", []float32{0.001, 0.002}, []int64{0, 0}, KindWeight, true)
	// min/max only: scale = 3/15, offset = round(-1.5/0.2) = -8 -> uint4 zero point 8.
	checkEnc(t, f, "fc.weight", "uint4", []float32{0.2}, []int64{8}, KindWeight, false)
	if !f.Tensors["softmax_out"].Float {
		t.Error("a float entry must keep the tensor in float")
	}
}

func TestAIMET10(t *testing.T) {
	f := mustLoadAny(t, "testdata/aimet_1.0.0.json", AIMET10)
	checkEnc(t, f, "input", "uint8", []float32{0.01}, []int64{12}, KindActivation, false)
	checkEnc(t, f, "conv1.weight", "int4", []float32{0.1, 0.2, 0.3}, []int64{0, 0, 0}, KindWeight, true)
	checkEnc(t, f, "fc.weight", "int8", []float32{0.1, 0.2, 0.3, 0.4}, []int64{0, 0, 0, 0}, KindWeight, true)
	if f.Tensors["fc.weight"].Encoding.BlockSize != 32 || !f.Tensors["softmax_out"].Float {
		t.Errorf("block size %d, float %v", f.Tensors["fc.weight"].Encoding.BlockSize, f.Tensors["softmax_out"].Float)
	}
	g := mustLoadAny(t, "testdata/onnxq.json", ONNXQ)
	checkEnc(t, g, "input", "uint8", []float32{0.01}, []int64{12}, KindActivation, false)
}

// TestExportRoundTrip: every dialect reads back what it wrote; an int8
// zero point 3 is AIMET offset -131, uint8 zero point 12 is offset -12.
func TestExportRoundTrip(t *testing.T) {
	ax := 0
	f := &File{Tensors: map[string]*Tensor{
		"a": {Kind: KindActivation, Encoding: &Encoding{DType: "uint8", Scale: []float32{0.01}, ZeroPoint: []int64{12}}},
		"b": {Kind: KindActivation, Encoding: &Encoding{DType: "int8", Scale: []float32{0.5}, ZeroPoint: []int64{3}}},
		"w": {Kind: KindWeight, Encoding: &Encoding{DType: "int4", Scale: []float32{0.1, 0.3}, ZeroPoint: []int64{0, 0}, Axis: &ax}},
		"s": {Kind: KindActivation, Float: true},
	}}
	for _, d := range []Dialect{ONNXQ, AIMET10, AIMET06} { // ORT has no float entry: TestORT
		b, err := f.Export(d)
		if err != nil {
			t.Fatal(err)
		}
		g, got, err := ParseAny(b)
		if err != nil || got != d {
			t.Fatalf("%s: %v (read as %s)\n%s", d, err, got, b)
		}
		checkEnc(t, g, "a", "uint8", []float32{0.01}, []int64{12}, KindActivation, false)
		checkEnc(t, g, "w", "int4", []float32{0.1, 0.3}, []int64{0, 0}, KindWeight, d != ONNXQ)
		if !g.Tensors["s"].Float {
			t.Errorf("%s: float entry lost", d)
		}
		if d == ONNXQ {
			checkEnc(t, g, "b", "int8", []float32{0.5}, []int64{3}, KindActivation, false)
			continue
		}
		// AIMET has no signedness: asymmetric int8 comes back as the same grid in uint8.
		checkEnc(t, g, "b", "uint8", []float32{0.5}, []int64{131}, KindActivation, false)
		if !bytes.Contains(b, []byte("-131")) {
			t.Errorf("%s: int8 zero point 3 must be offset -131:\n%s", d, b)
		}
	}
	if _, err := (&File{Tensors: map[string]*Tensor{"w": {Encoding: &Encoding{DType: "int8", Scale: []float32{1, 1}, ZeroPoint: []int64{0, 0}, Axis: &ax, BlockSize: 2, Shape: []int{2}}}}}).Export(AIMET06); err == nil {
		t.Error("blocked encodings must not export to AIMET 0.6.1")
	}
}

func TestAIMETErrors(t *testing.T) {
	cases := map[string]string{
		`{"version": "0.6.1", "activation_encodings": {"x": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "min": 1, "max": 0}]}}`:                                                                          `activation_encodings["x"][0].min: 1 is above max 0`,
		`{"version": "0.6.1", "param_encodings": {"w": [{"bitwidth": 3, "dtype": "int", "is_symmetric": "True", "offset": -4, "scale": 1}]}}`:                                                                          `param_encodings["w"][0].bitwidth: 3 is not supported (use 4, 8 or 16)`,
		`{"version": "0.6.1", "param_encodings": {"w": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "yes", "offset": -4, "scale": 1}]}}`:                                                                           `param_encodings["w"][0].is_symmetric: "yes" is not`,
		`{"version": "0.6.1", "param_encodings": {"w": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "offset": -128, "scale": -1}]}}`:                                                                       `param_encodings["w"][0].scale: -1 must be positive`,
		`{"version": "1.0.0", "param_encodings": [{"name": "w", "enc_type": "PER_TENSOR", "dtype": "INT", "bw": 8, "is_sym": true, "scale": [1, 2], "offset": [-128, -128]}]}`:                                         `param_encodings[0].scale: PER_TENSOR has one scale, not 2`,
		`{"version": "1.0.0", "param_encodings": [{"name": "w", "enc_type": "PER_BLOCK", "dtype": "INT", "bw": 8, "is_sym": true, "scale": [1], "offset": [-128]}]}`:                                                   `param_encodings[0].block_size: PER_BLOCK needs a positive block size`,
		`{"version": "1.0.0", "param_encodings": [{"name": "w", "enc_type": "PER_TENSOR", "dtype": "INT", "bw": 8, "is_sym": true, "scale": [1], "offset": [-128], "bogus": 1}]}`:                                      `param_encodings[0].bogus: unknown key`,
		`{"version": "1.0.0", "activation_encodings": [{"name": "x", "dtype": "INT", "bw": 8, "is_sym": false, "scale": [1], "offset": [-128], "enc_type": "PER_TENSOR"}, {"name": "x", "dtype": "FLOAT", "bw": 16}]}`: `activation_encodings[1]: "x" is listed twice`,
		`{"version": "1.0.0", "activation_encodings": [{"name": "x", "dtype": "INT", "bw": 8, "is_sym": false, "scale": [1], "offset": [1], "enc_type": "PER_TENSOR"}]}`:                                               `activation_encodings[0].offset[0]: 1 puts the zero point outside the 8-bit grid`,
		`{"version": "2.0.0", "activation_encodings": []}`: `AIMET encodings version "2.0.0" is not supported`,
	}
	for in, want := range cases {
		_, _, err := ParseAny([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", in, err, want)
		}
	}
}

func FuzzParseAny(f *testing.F) {
	for _, p := range []string{"testdata/aimet_0.6.1.json", "testdata/aimet_1.0.0.json", "testdata/onnxq.json", "testdata/ort_overrides.json", "testdata/rules.json", "testdata/qnn_overrides_0.6.1.json", "testdata/qnn_overrides_1.0.0.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, d, err := ParseAny(b)
		if err != nil {
			return
		}
		// What parses exports in onnxq's format (every dialect maps into it)
		// and parses again; its own dialect, when it can express it, too.
		out, err := g.Export(ONNXQ)
		if err != nil {
			t.Fatalf("export onnxq: %v", err)
		}
		if _, _, err := ParseAny(out); err != nil {
			t.Fatalf("re-read onnxq: %v\n%s", err, out)
		}
		out, err = g.Export(d)
		if err != nil {
			if d == AIMET06 || d == ORT {
				return // blocked encodings; ORT cannot express rule-only entries
			}
			t.Fatalf("export %s: %v", d, err)
		}
		h, _, err := ParseAny(out)
		if err != nil {
			t.Fatalf("re-read %s: %v\n%s", d, err, out)
		}
		// Type-only entries keep their type, symmetry and kind exactly.
		for name, a := range g.Tensors {
			if a.Encoding != nil {
				continue
			}
			b := h.Tensors[name]
			if b == nil || a.DType != b.DType || a.Float != b.Float || a.Kind != b.Kind || (a.Symmetric == nil) != (b.Symmetric == nil) || (a.Symmetric != nil && *a.Symmetric != *b.Symmetric) {
				t.Fatalf("%s %q: %+v came back as %+v\n%s", d, name, a, b, out)
			}
		}
	})
}

// TestSchemaMatchesLoader: each object of the JSON Schema lists exactly the
// keys the loader accepts, and every example in docs/overrides.md loads.
func TestSchemaMatchesLoader(t *testing.T) {
	b, err := os.ReadFile("../docs/overrides.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	keys := func(obj any) []string {
		return slices.Sorted(maps.Keys(obj.(map[string]any)["properties"].(map[string]any)))
	}
	for name, c := range map[string]struct {
		obj any
		typ reflect.Type
	}{
		"file": {schema, reflect.TypeOf(File{})}, "rule": {defs["rule"], reflect.TypeOf(Rule{})},
		"tensor": {defs["tensor"], reflect.TypeOf(Tensor{})}, "encoding": {defs["encoding"], reflect.TypeOf(Encoding{})},
		"observer": {defs["observer"], reflect.TypeOf(Observer{})},
		"skip":     {schema["properties"].(map[string]any)["skip"], reflect.TypeOf(Skip{})},
	} {
		want := slices.Sorted(maps.Keys(jsonFields(c.typ)))
		if got := keys(c.obj); !slices.Equal(got, want) {
			t.Errorf("schema %s: %v\n loader accepts %v", name, got, want)
		}
	}
	md, err := os.ReadFile("../docs/overrides.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, lang := range []string{"json", "toml"} {
		parts := strings.Split(string(md), "```"+lang+"\n")
		for _, p := range parts[1:] {
			src := p[:strings.Index(p, "```")]
			blocks++
			if lang == "json" {
				if _, _, err := ParseAny([]byte(src)); err != nil {
					t.Errorf("docs example:\n%s\n%v", src, err)
				}
				continue
			}
			c, err := ParseConfig([]byte(src), "docs")
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				_, err = c.Embedded()
			}
			if err != nil {
				t.Errorf("docs example:\n%s\n%v", src, err)
			}
		}
	}
	if blocks < 3 {
		t.Errorf("docs/overrides.md has %d examples", blocks)
	}
}

type wantType struct {
	dtype string
	sym   *bool
	float bool
	kind  string
	gran  string
	block int
}

func checkType(t *testing.T, f *File, name string, w wantType) {
	t.Helper()
	tt := f.Tensors[name]
	if tt == nil {
		t.Fatalf("%s: no entry (have %v)", name, f.Names())
	}
	if tt.Encoding != nil || tt.Min != nil || tt.Max != nil {
		t.Errorf("%s: a type-only entry got a range: %+v", name, tt)
	}
	symOK := (tt.Symmetric == nil) == (w.sym == nil) && (w.sym == nil || *tt.Symmetric == *w.sym)
	if tt.DType != w.dtype || !symOK || tt.Float != w.float || tt.Kind != w.kind || tt.Granularity != w.gran || tt.BlockSize != w.block {
		sym := "nil"
		if tt.Symmetric != nil {
			sym = strconv.FormatBool(*tt.Symmetric)
		}
		t.Errorf("%s: dtype %q symmetric %s float %v kind %q granularity %q block %d, want %+v", name, tt.DType, sym, tt.Float, tt.Kind, tt.Granularity, tt.BlockSize, w)
	}
}

var yes, no = func() *bool { b := true; return &b }(), func() *bool { b := false; return &b }()

// TestQNNTypeOnly: entries with a type and no range, in the list and object
// forms, with "int"+bitwidth or combined dtypes, is_symmetric as bool or
// string, and glob names, set types and leave ranges to calibration. "int"
// with no is_symmetric is asymmetric and so unsigned, as AIMET grids are read.
func TestQNNTypeOnly(t *testing.T) {
	f := mustLoadAny(t, "testdata/qnn_overrides_0.6.1.json", AIMET06)
	checkType(t, f, "/layer.0/Softmax_output_0", wantType{dtype: "uint16", sym: no, kind: KindActivation})
	checkType(t, f, "/layer.0/attn/MatMul_output_0", wantType{dtype: "int16", sym: yes, kind: KindActivation})
	checkType(t, f, "/layer.0/mlp/act_output_0", wantType{dtype: "int8", sym: yes, kind: KindActivation})
	checkType(t, f, "/layer.*/norm/Mul_output_0", wantType{float: true, kind: KindActivation})
	checkType(t, f, "model.layers.*.self_attn.q_proj.weight", wantType{dtype: "int4", sym: yes, kind: KindWeight})
	checkType(t, f, "model.layers.*.mlp.up_proj.weight", wantType{dtype: "uint8", sym: no, kind: KindWeight})
	checkType(t, f, "lm_head.bias", wantType{dtype: "int32", kind: KindWeight})

	g := mustLoadAny(t, "testdata/qnn_overrides_1.0.0.json", AIMET10)
	checkType(t, g, "/layer.0/Softmax_output_0", wantType{dtype: "uint16", sym: no, kind: KindActivation})
	checkType(t, g, "/layer.0/attn/MatMul_output_0", wantType{dtype: "int16", sym: yes, kind: KindActivation})
	checkType(t, g, "/layer.*/norm/Mul_output_0", wantType{float: true, kind: KindActivation})
	checkType(t, g, "model.layers.*.self_attn.q_proj.weight", wantType{dtype: "int4", sym: yes, kind: KindWeight, gran: PerBlock, block: 32})
	checkType(t, g, "model.layers.*.mlp.up_proj.weight", wantType{dtype: "int8", sym: yes, kind: KindWeight, gran: PerChannel})
	checkType(t, g, "lm_head.bias", wantType{dtype: "int32", kind: KindWeight})

	// Globs resolve as in onnxq's format, and a param glob sets weights only.
	w, err := f.Weight("model.layers.7.self_attn.q_proj.weight", "/layers.7/q_proj/MatMul", "MatMul")
	if err != nil || w.DType != "int4" || w.Symmetric == nil || !*w.Symmetric || w.Source() != `tensors["model.layers.*.self_attn.q_proj.weight"]` {
		t.Errorf("weight glob: %+v %v", w, err)
	}
	a, err := f.Activation("/layer.3/norm/Mul_output_0", nil, nil)
	if err != nil || a.DType != "float" {
		t.Errorf("activation glob: %+v %v", a, err)
	}
	h, _, err := ParseAny([]byte(`{"param_encodings": {"*": {"dtype": "int4", "is_symmetric": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := h.Activation("relu_out", nil, nil); a.DType != "" {
		t.Errorf("a param_encodings glob set an activation: %+v", a)
	}
	if w, _ := h.Weight("conv.weight", "conv", "Conv"); w.DType != "int4" {
		t.Errorf("a param_encodings glob missed a weight: %+v", w)
	}
	if b, _ := f.Bias("lm_head.bias", "lm_head", "Gemm"); b.DType != "int32" || b.Source() != `tensors["lm_head.bias"]` {
		t.Errorf("bias entry: %+v", b)
	}
}

func TestQNNTypeOnlyErrors(t *testing.T) {
	cases := map[string]string{
		`{"activation_encodings": {"x": [{"bitwidth": 5, "dtype": "int"}]}}`:                                                                               `activation_encodings["x"][0].bitwidth: 5 is not supported (use 4, 8 or 16)`,
		`{"activation_encodings": {"x": {"bitwidth": 5, "dtype": "int"}}}`:                                                                                 `activation_encodings["x"].bitwidth: 5 is not supported (use 4, 8 or 16)`,
		`{"activation_encodings": {"x": [{"bitwidth": 8, "dtype": "int", "scale": 0.1}]}}`:                                                                 `activation_encodings["x"][0]: needs scale and offset, or min and max, or none of them for a type-only entry whose range is calibrated (it has only scale)`,
		`{"activation_encodings": {"x": {"bitwidth": 8, "dtype": "int", "min": 0, "offset": 3}}}`:                                                          `activation_encodings["x"]: needs scale and offset, or min and max, or none of them for a type-only entry whose range is calibrated (it has only offset and min)`,
		`{"activation_encodings": {"x": {"dtype": "int12"}}}`:                                                                                              `activation_encodings["x"].dtype: "int12" is not supported (use "int" or "float" with a bitwidth, or int4, int8, int16, uint8, uint16)`,
		`{"activation_encodings": {"x": {"dtype": "int16", "bitwidth": 8}}}`:                                                                               `activation_encodings["x"].bitwidth: 8 contradicts dtype "int16" (16 bits)`,
		`{"activation_encodings": {"x": {"dtype": "int"}}}`:                                                                                                `activation_encodings["x"].bitwidth: missing`,
		`{"activation_encodings": {"x": {"dtype": "int16", "is_symmetric": 1}}}`:                                                                           `activation_encodings["x"].is_symmetric: 1 is not true, false, "True" or "False"`,
		`{"activation_encodings": {"x": {"dtype": "int16", "is_symmetric": "yes"}}}`:                                                                       `activation_encodings["x"].is_symmetric: "yes" is not`,
		`{"activation_encodings": {"x": {"dtype": "int", "bitwidth": 32}}}`:                                                                                `activation_encodings["x"]: 32-bit integers are for biases`,
		`{"param_encodings": {"b": [{"dtype": "int", "bitwidth": 32, "scale": 1, "offset": 0}]}}`:                                                          `param_encodings["b"][0].bitwidth: a 32-bit encoding is a bias's`,
		`{"activation_encodings": {"x": [{"bitwidth": 16, "dtype": "int"}, {"bitwidth": 16, "dtype": "int"}]}}`:                                            `activation_encodings["x"][1]: a type-only entry (no scale, offset, min or max) is per tensor`,
		`{"activation_encodings": {"x": {"bitwidth": 16, "dtype": "int", "bogus": 1}}}`:                                                                    `activation_encodings["x"].bogus: unknown key`,
		`{"activation_encodings": {"x": {"bitwidth": "16", "dtype": "int"}}}`:                                                                              `activation_encodings["x"].bitwidth: a JSON string where an integer is expected`,
		`{"activation_encodings": {"x": [{"bitwidth": 16.5, "dtype": "int"}]}}`:                                                                            `activation_encodings["x"][0].bitwidth: a JSON number 16.5 where an integer is expected`,
		`{"activation_encodings": {"x": "int16"}}`:                                                                                                         `activation_encodings["x"]: a JSON string where a list is expected`,
		`{"activation_encodings": {"x*": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "min": 0, "max": 1}]}}`:                                 `an explicit encoding names one tensor, not a glob`,
		`{"version": "1.0.0", "activation_encodings": [{"name": "x", "dtype": "INT", "bw": 8, "enc_type": "PER_CHANNEL"}]}`:                                `activation_encodings[0].enc_type: PER_CHANNEL is for weights`,
		`{"version": "1.0.0", "activation_encodings": [{"name": "x", "dtype": "INT", "bw": 8, "is_sym": true, "scale": [0.1], "enc_type": "PER_TENSOR"}]}`: `activation_encodings[0].offset: 0 values for 1 scales`,
		`{"version": "1.0.0", "param_encodings": [{"name": "w", "dtype": "INT", "bw": 4, "enc_type": "PER_BLOCK"}]}`:                                       `param_encodings[0].block_size: PER_BLOCK needs a positive block size`,
		`{"version": "1.0.0", "param_encodings": [{"name": "w", "dtype": "INT", "bw": 6}]}`:                                                                `param_encodings[0].bw: 6 is not supported (use 4, 8 or 16)`,
	}
	for in, want := range cases {
		_, _, err := ParseAny([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", in, err, want)
		}
	}
}

// TestTypeOnlyWriter: resolved per-tensor types written as QNN overrides (both
// layouts) read back with the same types, symmetry and kinds; types whose
// signedness the symmetry does not imply keep their combined dtype.
func TestTypeOnlyWriter(t *testing.T) {
	types := map[string]TensorType{
		"/attn/Softmax_output_0": {DType: "uint16", Symmetric: no, Kind: KindActivation},
		"/attn/MatMul_output_0":  {DType: "int16", Symmetric: yes, Kind: KindActivation},
		"/mlp/act_output_0":      {DType: "int16", Kind: KindActivation},               // symmetry left to the converter
		"/mlp/Add_output_0":      {DType: "int8", Symmetric: no, Kind: KindActivation}, // asymmetric signed
		"/norm/Mul_output_0":     {DType: "float", Kind: KindActivation},
		"layers.*.q_proj.weight": {DType: "int4", Symmetric: yes, Kind: KindWeight},
		"head.bias":              {DType: "int32", Kind: KindWeight},
	}
	b, err := QNNOverrides(types)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("scale")) || bytes.Contains(b, []byte("offset")) || !bytes.Contains(b, []byte(`"bw": 16`)) {
		t.Errorf("not a type-only file:\n%s", b)
	}
	f, err := TypeOnlyFile(types)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dialect{AIMET10, AIMET06, ONNXQ} {
		out, err := f.Export(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if d == AIMET10 && !bytes.Equal(out, b) {
			t.Errorf("QNNOverrides differs from Export(aimet-1.0)")
		}
		g, got, err := ParseAny(out)
		if err != nil || got != d {
			t.Fatalf("%s: %v (read as %s)\n%s", d, err, got, out)
		}
		for name, tt := range types {
			w := wantType{dtype: tt.DType, sym: tt.Symmetric, kind: tt.Kind}
			if tt.DType == "float" {
				w = wantType{float: true, kind: tt.Kind}
			}
			checkType(t, g, name, w)
		}
	}
	if !bytes.Contains(b, []byte(`"dtype": "int8"`)) || !bytes.Contains(b, []byte(`"dtype": "INT"`)) {
		t.Errorf("asymmetric int8 must keep its combined dtype, symmetric int16 the QNN INT form:\n%s", b)
	}
	for _, c := range []struct {
		types map[string]TensorType
		want  string
	}{
		{map[string]TensorType{"x": {DType: "int8"}}, `tensors["x"].kind: "" is not`},
		{map[string]TensorType{"x": {DType: "int9", Kind: KindActivation}}, `tensors["x"].dtype: "int9" is not supported`},
		{map[string]TensorType{"x": {DType: "int32", Kind: KindActivation}}, `int32 is for biases`},
	} {
		if _, err := QNNOverrides(c.types); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.types, err, c.want)
		}
	}
	rules := &File{Version: Version, Nodes: map[string]*Rule{"/attn/*": {ActivationDType: "int16"}}}
	if _, err := rules.Export(AIMET10); err == nil || !strings.Contains(err.Error(), "resolve defaults, op_types, nodes and skip to tensor names first") {
		t.Errorf("node rules exported to AIMET: %v", err)
	}
	pinned := &File{Version: Version, Tensors: map[string]*Tensor{"x": {DType: "uint8", Min: Values{0}, Max: Values{6}, Kind: KindActivation}}}
	if _, err := pinned.Export(AIMET06); err == nil || !strings.Contains(err.Error(), "no pinned range") {
		t.Errorf("a pinned range exported to a type-only entry: %v", err)
	}
}
