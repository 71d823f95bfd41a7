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
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(dir, "calib")
	mustMkdir(t, cal)
	randomSamples(t, cal, 4, []int{1, 8, 16, 16}, 1)
	f, err := overrides.Parse([]byte(js))
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
