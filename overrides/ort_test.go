package overrides

import (
	"strings"
	"testing"
)

// TestORT reads ONNX Runtime's TensorQuantOverrides as they are: quant_type
// names, ranges (both sides or one), fixed scale/zero_point with or without a
// type, per-channel settings and per-channel encodings.
func TestORT(t *testing.T) {
	f := mustLoadAny(t, "testdata/ort_overrides.json", ORT)
	in := f.Tensors["input"]
	if in.DType != "uint16" || len(in.Min) != 1 || in.Min[0] != 0 || in.Max[0] != 1 || in.Encoding != nil {
		t.Errorf("input: %+v", in)
	}
	if r := f.Tensors["relu6_out"]; r.Min != nil || len(r.Max) != 1 || r.Max[0] != 6 {
		t.Errorf("relu6_out: %+v", r)
	}
	if a := f.Tensors["attn_out"]; a.DType != "int16" || a.Symmetric == nil || !*a.Symmetric {
		t.Errorf("attn_out: %+v", a)
	}
	checkEnc(t, f, "fixed_out", "uint8", []float32{0.02}, []int64{128}, "", false)
	checkEnc(t, f, "untyped_out", "", []float32{0.5}, []int64{3}, "", false)
	if w := f.Tensors["conv1.weight"]; w.DType != "int4" || w.Granularity != PerChannel || *w.Axis != 0 || w.Kind != KindWeight {
		t.Errorf("conv1.weight: %+v", w)
	}
	checkEnc(t, f, "conv2.weight", "int8", []float32{0.1, 0.2, 0.3}, []int64{0, 0, 0}, KindWeight, false)
	if ax := f.Tensors["conv2.weight"].Encoding.Axis; ax == nil || *ax != 0 {
		t.Errorf("conv2.weight axis %v", ax)
	}
	if w := f.Tensors["fc.weight"]; w.DType != "uint8" || w.Min[0] != -1.5 {
		t.Errorf("fc.weight: %+v", w)
	}
	// Encodings export to ORT and read back.
	g := &File{Tensors: map[string]*Tensor{"fixed_out": f.Tensors["fixed_out"], "conv2.weight": f.Tensors["conv2.weight"]}}
	b, err := g.Export(ORT)
	if err != nil {
		t.Fatal(err)
	}
	h, d, err := ParseAny(b)
	if err != nil || d != ORT {
		t.Fatalf("%v (%s)\n%s", err, d, b)
	}
	checkEnc(t, h, "conv2.weight", "int8", []float32{0.1, 0.2, 0.3}, []int64{0, 0, 0}, KindWeight, false)
	checkEnc(t, h, "fixed_out", "uint8", []float32{0.02}, []int64{128}, "", false)
}

func TestORTErrors(t *testing.T) {
	cases := map[string]string{
		`{"x": [{"quant_type": "QFLOAT8E4M3FN"}]}`:                                                        `["x"][0].quant_type: "QFLOAT8E4M3FN" is not supported`,
		`{"x": [{"reduce_range": true}]}`:                                                                 `["x"][0].reduce_range: true is not supported`,
		`{"x": [{"convert": {"quant_type": "QUInt16"}}]}`:                                                 `["x"][0].convert: a second type for some consumers is not supported`,
		`{"x": [{"scale": 0.1}]}`:                                                                         `["x"][0]: scale and zero_point go together`,
		`{"x": [{"scale": 0.1, "zero_point": 0, "rmax": 3}]}`:                                             `["x"][0]: a fixed scale and zero_point leave no room`,
		`{"w": [{"scale": 0.1, "zero_point": 0}, {"scale": 0.2, "zero_point": 0}]}`:                       `["w"][0].axis: 2 per-channel entries need the axis`,
		`{"w": [{"axis": 0, "scale": 0.1, "zero_point": 0}, {"scale": 0.2}]}`:                             `["w"][1]: scale and zero_point go together`,
		`{"w": [{"axis": 0, "scale": 0.1, "zero_point": 0}, {"axis": 1, "scale": 0.2, "zero_point": 0}]}`: `["w"][1]: axis and symmetric belong in entry 0`,
		`{"x": [{"rmin": 2, "rmax": 1}]}`:                                                                 `tensors["x"].min[0]: 2 is above max 1`,
		`{"x": [{"quant_type": "QUInt8", "scale": 0.1, "zero_point": 300}]}`:                              `zero_point[0]: 300 is outside uint8's range`,
		`{"x": [{"bogus": 1}]}`:                                                                           `["x"][0].bogus: unknown key`,
		`{"x": []}`:                                                                                       `["x"]: an empty list`,
		`{"x": [{"symmetric": "yes"}]}`:                                                                   `a JSON string where true or false is expected`,
	}
	for in, want := range cases {
		_, _, err := ParseAny([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", in, err, want)
		}
	}
}

// TestRuleFields resolves every rule field through the precedence chain.
func TestRuleFields(t *testing.T) {
	f := mustLoadAny(t, "testdata/rules.json", ONNXQ)
	s, err := f.Activation("sm_out", []string{"/blocks.3/attn/Softmax"}, []string{"Softmax"})
	if err != nil {
		t.Fatal(err)
	}
	// Softmax's kind wins; the defaults' bins still apply; the percentile
	// resolves too but the converter drops it for minmax.
	if s.DType != "uint16" || s.Observer.Kind != "minmax" || s.Observer.Bins != 4096 || s.Source() != `op_types["Softmax"], defaults` {
		t.Errorf("softmax output: %+v (%s)", s, s.Source())
	}
	s, _ = f.Activation("mm_out", []string{"/blocks.7/attn/MatMul_1"}, []string{"MatMul"})
	if s.DType != "int16" || s.Symmetric == nil || !*s.Symmetric || s.Observer.Kind != "percentile" {
		t.Errorf("attention MatMul output: %+v", s)
	}
	s, _ = f.Activation("relu6_out", []string{"/blocks.0/relu6"}, []string{"Clip"})
	if len(s.Min) != 1 || s.Min[0] != 0 || s.Max[0] != 6 || s.DType != "uint8" {
		t.Errorf("relu6_out: %+v", s)
	}
	w, _ := f.Weight("blocks.0.conv.weight", "/blocks.0/conv", "Conv")
	if w.DType != "int16" || w.Symmetric == nil || !*w.Symmetric || w.Granularity != PerChannel {
		t.Errorf("conv weight: %+v", w)
	}
	w, _ = f.Weight("fc.weight", "/blocks.0/fc", "MatMul")
	if w.DType != "int4" || w.Granularity != PerBlock || w.BlockSize != 32 {
		t.Errorf("MatMul weight: %+v", w)
	}
	b, _ := f.Bias("fc.bias", "/head/fc", "Gemm")
	if b.DType != "float" || b.Source() != `op_types["Gemm"]` {
		t.Errorf("Gemm bias: %+v", b)
	}
	b, _ = f.Bias("conv.bias", "/blocks.0/conv", "Conv")
	if b.DType != "int32" || b.Source() != "defaults" {
		t.Errorf("Conv bias: %+v", b)
	}
	if src, ok := f.Skipped("/head/fc", "Gemm"); !ok || src != "skip.nodes[0]" {
		t.Errorf("skip: %q %v", src, ok)
	}
}

func TestRuleFieldErrors(t *testing.T) {
	cases := map[string]string{
		`{"version": 1, "defaults": {"observer": {"kind": "kl"}}}`:                                            `defaults.observer.kind: "kl" is not minmax`,
		`{"version": 1, "defaults": {"observer": {"percentile": 120}}}`:                                       `defaults.observer.percentile: 120 is not in (0, 100]`,
		`{"version": 1, "defaults": {"observer": {"bins": 8}}}`:                                               `defaults.observer.bins: 8 is not in [16, 65536]`,
		`{"version": 1, "op_types": {"Relu": {"observer": {"moving_average": 1}}}}`:                           `op_types["Relu"].observer.moving_average: 1 is not in [0, 1)`,
		`{"version": 1, "op_types": {"Relu": {"activation_dtype": "int4", "observer": {"kind": "entropy"}}}}`: `op_types["Relu"].observer.kind: the entropy observer does not go with 4-bit`,
		`{"version": 1, "defaults": {"weight_granularity": "per_row"}}`:                                       `defaults.weight_granularity: "per_row" is not per_channel`,
		`{"version": 1, "defaults": {"weight_granularity": "per_tensor", "weight_block_size": 32}}`:           `defaults.weight_block_size: a block size goes with per_block`,
		`{"version": 1, "defaults": {"bias_dtype": "int16"}}`:                                                 `defaults.bias_dtype: "int16" is not supported`,
		`{"version": 1, "defaults": {"weight_dtype": "int3"}}`:                                                `defaults.weight_dtype: "int3" is not supported`,
		`{"version": 1, "tensors": {"x": {"min": 3, "max": 1}}}`:                                              `tensors["x"].min[0]: 3 is above max 1`,
		`{"version": 1, "tensors": {"x": {"min": [1, 2]}}}`:                                                   `tensors["x"]: min or max alone is one value`,
		`{"version": 1, "tensors": {"x": {"min": [0, 0], "max": [1]}}}`:                                       `tensors["x"].max: 1 values for 2 minimums`,
		`{"version": 1, "tensors": {"x": {"min": "low", "max": 1}}}`:                                          `tensors["x"].min: a number or a list of numbers is expected`,
		`{"version": 1, "tensors": {"x": {"min": 0, "max": 1, "observer": {"kind": "mse"}}}}`:                 `tensors["x"].observer: a pinned range is not calibrated`,
		`{"version": 1, "tensors": {"x": {"float": true, "symmetric": true}}}`:                                `tensors["x"]: a float tensor takes no quantization settings`,
		`{"version": 1, "tensors": {"x": {"kind": "activation", "granularity": "per_channel"}}}`:              `tensors["x"].granularity: activations are quantized per tensor`,
		`{"version": 1, "tensors": {"w": {"kind": "weight", "observer": {"kind": "mse"}}}}`:                   `tensors["w"].observer: weights are not calibrated`,
		`{"version": 1, "tensors": {"x*": {"min": [0, 0], "max": [1, 1]}}}`:                                   `per-channel ranges are for one weight`,
		`{"version": 1, "nodes": {"[conv": {"activation_dtype": "int8"}}}`:                                    `nodes["[conv"]: "[conv" is a malformed glob`,
		`{"version": 1, "defaults": {"observer": {"kind": "minmax", "momentum": 0.1}}}`:                       `defaults.observer.momentum: unknown key (known here: bins, kind, moving_average, percentile)`,
	}
	for in, want := range cases {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", in, err, want)
		}
	}
}
