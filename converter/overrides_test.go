package converter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
)

// quantTypes maps each quantized tensor of a QDQ model to its stored type:
// activations by their QuantizeLinear's zero point, weights by their
// DequantizeLinear's initializer.
func quantTypes(m *graph.Model) map[string]graph.DataType {
	out := map[string]graph.DataType{}
	for _, n := range m.Graph.Nodes {
		switch {
		case n.OpType == "QuantizeLinear" && n.Input(2) != nil && n.Input(2).Const != nil:
			out[strings.TrimSuffix(n.Output().Name, "_quantized")] = n.Input(2).Const.DType
		case n.OpType == "DequantizeLinear" && n.Input(0).Const != nil:
			out[strings.TrimSuffix(n.Input(0).Name, "_quantized")] = n.Input(0).Const.DType
		}
	}
	return out
}

func convertWith(t *testing.T, m *graph.Model, js string) (*Report, *graph.Model, error) {
	t.Helper()
	dir, model, cal := withSamples(t, m, 4, []int{1, 8, 16, 16}, 1)
	f, _, err := overrides.ParseAny([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{}, Overrides: f})
	if err != nil {
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("output written despite %v", err)
		}
		return nil, nil, err
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return rep, q, nil
}

// TestOverrideRules: tensor > node (glob, through a Conv+Clip group) > op type
// > defaults; float types and skips leave tensors unquantized, with reasons.
func TestOverrideRules(t *testing.T) {
	js := `{"version": 1,
	  "defaults": {"weight_dtype": "int8"},
	  "op_types": {"Gemm": {"activation_dtype": "uint16"}, "Conv": {"weight_dtype": "int8"}},
	  "nodes": {"Conv_[12]": {"activation_dtype": "int16", "weight_dtype": "int4"}, "Conv_3": {"weight_dtype": "float"}},
	  "tensors": {"input": {"dtype": "uint16"}},
	  "skip": {"op_types": ["Add"], "nodes": ["NoSuch*"], "weights_smaller_than": 20}}`
	rep, q, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
	if err != nil {
		t.Fatal(err)
	}
	got := quantTypes(q)
	want := map[string]graph.DataType{
		"input": graph.Uint16, "Clip_1_out": graph.Int16, "Clip_2_out": graph.Int16,
		// fold-bn renamed the Conv weights; the graph output took the Gemm's.
		"conv_w_bnfold": graph.Int4, "conv_w_1_bnfold": graph.Int4, "logits": graph.Uint16, "fc_w": graph.Int8,
	}
	for name, dt := range want {
		if got[name] != dt {
			t.Errorf("%s: %v, want %v", name, got[name], dt)
		}
	}
	for _, name := range []string{"conv_w_2_bnfold", "Add_1_out"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s is quantized, the overrides keep it float", name)
		}
	}
	reasons := map[string]string{}
	for _, f := range rep.FloatTensors {
		reasons[f.Name] = f.Reason
	}
	if reasons["conv_w_2_bnfold"] != `overrides: nodes["Conv_3"]` || reasons["Add_1_out"] != "overrides: skip.op_types[0]" {
		t.Errorf("float reasons %v", reasons)
	}
	src := map[string]string{}
	for _, tr := range rep.Tensors {
		src[tr.Name] = tr.Override
	}
	if src["input"] != `tensors["input"]` || src["Clip_1_out"] != `nodes["Conv_[12]"]` || src["logits"] != `op_types["Gemm"]` || src["fc_w"] != "defaults" || src["conv_w_bnfold"] != `nodes["Conv_[12]"]` {
		t.Errorf("sources %v", src)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], `the glob "NoSuch*" matches nothing`) {
		t.Errorf("warnings %v", rep.Warnings)
	}
}

func TestOverrideRuleErrors(t *testing.T) {
	for js, want := range map[string]string{
		`{"version": 1, "nodes": {"Conv_1x": {"weight_dtype": "int4"}}}`:                                           `nodes["Conv_1x"]: the model has no "Conv_1x" (closest: "Conv_1", "Conv_2", "Conv_3")`,
		`{"version": 1, "nodes": {"Conv_*": {"weight_dtype": "int4"}, "*_1": {"weight_dtype": "int8"}}}`:           `"Conv_1" matches both globs "*_1" and "Conv_*", which set different things`,
		`{"version": 1, "tensors": {"Clip_1_out": {"dtype": "uint16"}, "conv_w": {"dtype": "float"}}, "skip": {}}`: "",
	} {
		_, _, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", js, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", js, err, want)
		}
	}
}

// TestOverrideSettings: pinned ranges (both sides, one side, per channel),
// per-tensor observers, weight granularity and symmetry, float biases.
func TestOverrideSettings(t *testing.T) {
	js := `{"version": 1,
	  "defaults": {"observer": {"kind": "percentile", "percentile": 99.9}},
	  "op_types": {"Gemm": {"bias_dtype": "float", "weight_dtype": "uint8", "weight_symmetric": false}},
	  "nodes": {"Conv_2": {"weight_granularity": "per_tensor"}},
	  "tensors": {
	    "Clip_1_out": {"min": 0, "max": 6},
	    "input": {"max": 0.5},
	    "logits": {"observer": {"kind": "minmax", "moving_average": 0.5}},
	    "conv_w_2": {"min": [-1, -1, -1, -1, -1, -1, -1, -1], "max": [1, 1, 1, 1, 2, 2, 2, 2], "axis": 0}
	  }}`
	rep, q, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*TensorReport{}
	for _, tr := range rep.Tensors {
		byName[tr.Name] = tr
	}
	c := byName["Clip_1_out"]
	if c.Observer != "pinned range" || c.Encoding.ZeroPoint[0] != 0 || c.Encoding.Scale[0] != float32(6.0/255) {
		t.Errorf("Clip_1_out: %s %+v", c.Observer, c.Encoding)
	}
	if in := byName["input"]; in.Range[1] != 0.5 || in.Range[0] >= 0 || in.Observer != "percentile" {
		t.Errorf("input: range %v, observer %s (max pinned to 0.5, min calibrated)", *in.Range, in.Observer)
	}
	if l := byName["logits"]; l.Observer != "minmax" || l.Override != `tensors["logits"], defaults` {
		t.Errorf("logits: observer %s, override %q", l.Observer, l.Override)
	}
	if w := byName["conv_w_1_bnfold"]; len(w.Encoding.Scale) != 1 || w.Override != `nodes["Conv_2"]` {
		t.Errorf("Conv_2 weight: %d scales, override %q; want per tensor", len(w.Encoding.Scale), w.Override)
	}
	w3 := byName["conv_w_2_bnfold"].Encoding
	if len(w3.Scale) != 8 || w3.Scale[0] != float32(1.0/127) || w3.Scale[7] != float32(2.0/127) {
		t.Errorf("Conv_3 weight from pinned per-channel ranges: %v", w3.Scale)
	}
	fc := byName["fc_w"].Encoding
	if fc.DType != graph.Uint8 || len(fc.Scale) != 10 {
		t.Errorf("fc_w: %+v", fc)
	}
	asym := false
	for _, z := range fc.ZeroPoint {
		asym = asym || z != 128
	}
	if !asym {
		t.Errorf("fc_w: zero points %v, want an asymmetric grid", fc.ZeroPoint)
	}
	floatBias := false
	for _, f := range rep.FloatTensors {
		floatBias = floatBias || (f.Name == "fc_b" && f.Reason == `overrides: op_types["Gemm"]`)
	}
	if _, ok := byName["fc_b"]; ok || !floatBias {
		t.Errorf("fc_b must stay float by op_types[\"Gemm\"]: %v", rep.FloatTensors)
	}
	if got := quantTypes(q); got["fc_b"] != graph.Undefined {
		t.Errorf("fc_b stored as %v", got["fc_b"])
	}
}

func TestOverrideSettingErrors(t *testing.T) {
	for js, want := range map[string]string{
		`{"version": 1, "nodes": {"Conv_1": {"weight_granularity": "per_block", "weight_block_size": 4}}}`:                 `nodes["Conv_1"]: weight "conv_w_bnfold": per_block is for 2-D MatMul and Gemm weights`,
		`{"version": 1, "tensors": {"conv_w": {"axis": 1}}}`:                                                               `axis 1, but the op's output channels are 48 channels along axis 0`,
		`{"version": 1, "tensors": {"conv_w_2": {"min": [-1, -1], "max": [1, 1]}}}`:                                        `2 ranges, but the weight [8 48 1 1] has 8 channels along axis 0`,
		`{"version": 1, "tensors": {"fc_w": {"observer": {"kind": "mse"}}}}`:                                               `"fc_w" is a weight; weights are not calibrated`,
		`{"version": 1, "tensors": {"fc_w": {"max": 1}}}`:                                                                  `a weight's range needs both min and max`,
		`{"version": 1, "tensors": {"Clip_1_out": {"granularity": "per_channel"}}}`:                                        `"Clip_1_out" is an activation; granularity and block size are for weights`,
		`{"version": 1, "defaults": {"observer": {"kind": "entropy"}}, "nodes": {"Conv_1": {"activation_dtype": "int4"}}}`: `"Clip_1_out" is 4-bit; the entropy observer needs at least 8 bits`,
		`{"version": 1, "tensors": {"Clip_1_out": {"min": 7}}}`:                                                            `the pinned side leaves the range`,
	} {
		_, _, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", js, err, want)
		}
	}
}

// TestObserverLevelsFollowActivationType: entropy and MSE search against the
// step of the tensor's own type, so a uint16 tensor is not clipped as if it
// had 256 levels.
func TestObserverLevelsFollowActivationType(t *testing.T) {
	st := newSettings()
	st.act["wide"] = overrides.Setting{DType: "uint16"}
	st.act["narrow"] = overrides.Setting{DType: "int8"}
	opt := Options{ActType: graph.Uint8, Observer: calib.Config{Kind: "entropy"}}
	for name, want := range map[string]int{"wide": 65536, "narrow": 256, "default": 256} {
		if got := st.observer(name, opt).Levels; got != want {
			t.Errorf("%s: %d levels, want %d", name, got, want)
		}
	}
}
