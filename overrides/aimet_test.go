package overrides

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"slices"
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
