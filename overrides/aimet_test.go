package overrides

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
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
		`{"version": "0.6.1", "param_encodings": {"w": [{"bitwidth": 3, "dtype": "int", "is_symmetric": "True", "offset": -4, "scale": 1}]}}`:                                                                          `param_encodings["w"][0].bitwidth: 3-bit integers are not supported`,
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
	for _, p := range []string{"testdata/aimet_0.6.1.json", "testdata/aimet_1.0.0.json", "testdata/onnxq.json", "testdata/ort_overrides.json", "testdata/rules.json"} {
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
		if _, _, err := ParseAny(out); err != nil {
			t.Fatalf("re-read %s: %v\n%s", d, err, out)
		}
	})
}

// TestSchemaMatchesLoader: every property the JSON Schema names is a key the
// loader accepts, and the documented example parses.
func TestSchemaMatchesLoader(t *testing.T) {
	b, err := os.ReadFile("../docs/overrides.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	top := schema["properties"].(map[string]any)
	defs := schema["$defs"].(map[string]any)
	props := func(m any) []string {
		var out []string
		for k := range m.(map[string]any)["properties"].(map[string]any) {
			out = append(out, k)
		}
		return out
	}
	// One document per schema object, each key set to a valid value.
	valid := map[string]string{
		"activation_dtype": `"int16"`, "weight_dtype": `"int4"`, "activation_symmetric": `true`,
		"dtype": `"uint8"`, "scale": `[0.5]`, "zero_point": `[3]`, "axis": `0`, "block_size": `0`, "scale_shape": `[1]`,
		"float": `false`, "symmetric": `true`, "kind": `"activation"`,
		"nodes": `["n*"]`, "op_types": `["Add"]`, "weights_smaller_than": `4`, "weights_fewer_channels_than": `2`,
	}
	obj := func(keys []string) string {
		var kv []string
		for _, k := range keys {
			kv = append(kv, fmt.Sprintf("%q: %s", k, valid[k]))
		}
		return "{" + strings.Join(kv, ", ") + "}"
	}
	for _, doc := range []string{
		`{"version": 1, "defaults": ` + obj(props(defs["rule"])) + `}`,
		`{"version": 1, "tensors": {"t": {"encoding": ` + obj(props(defs["encoding"])) + `}}}`,
		`{"version": 1, "tensors": {"t": ` + obj([]string{"dtype", "symmetric", "kind", "float"}) + `}}`,
		`{"version": 1, "skip": ` + obj(props(top["skip"])) + `}`,
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
	for k := range top {
		if _, err := Parse([]byte(fmt.Sprintf(`{"version": 1, %q: null}`, k))); err != nil && strings.Contains(err.Error(), "unknown key") {
			t.Errorf("schema property %q is unknown to the loader", k)
		}
	}
	// The documented example.
	md, err := os.ReadFile("../docs/overrides.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	i := strings.Index(s, "```json\n")
	j := strings.Index(s[i+8:], "```")
	if _, err := Parse([]byte(s[i+8 : i+8+j])); err != nil {
		t.Errorf("docs/overrides.md example: %v", err)
	}
}
