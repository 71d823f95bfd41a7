package overrides

import (
	"strings"
	"testing"
)

// TestSmoothQuantRules: smooth_quant resolves node > op type > defaults, a
// rule without it falls through, and values outside [0, 1] are errors at
// their JSON or TOML path.
func TestSmoothQuantRules(t *testing.T) {
	f, err := Parse([]byte(`{"version": 1,
		"defaults": {"smooth_quant": 0.5},
		"op_types": {"Gemm": {"smooth_quant": 0.8}},
		"nodes": {"mlp.*": {"smooth_quant": 0}, "attn.q": {"weight_dtype": "int8"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node, op string
		alpha    float64
		src      string
	}{
		{"mlp.up", "MatMul", 0, `nodes["mlp.*"]`},
		{"attn.q", "MatMul", 0.5, "defaults"}, // its node rule does not set it
		{"head", "Gemm", 0.8, `op_types["Gemm"]`},
	} {
		a, src, ok, err := f.SmoothQuantOf(c.node, c.op)
		if err != nil || !ok || a != c.alpha || src != c.src {
			t.Errorf("%s: alpha %v from %q (ok %v, err %v), want %v from %q", c.node, a, src, ok, err, c.alpha, c.src)
		}
	}
	if _, _, ok, _ := (&File{Version: 1}).SmoothQuantOf("x", "MatMul"); ok {
		t.Error("a file without smooth_quant set an alpha")
	}
	if _, err := Parse([]byte(`{"version": 1, "nodes": {"a": {"smooth_quant": 1.5}}}`)); err == nil || !strings.Contains(err.Error(), `nodes["a"].smooth_quant: 1.5 is not in [0, 1]`) {
		t.Errorf("alpha 1.5: %v", err)
	}
	for in, want := range map[string]string{
		"[quantization]\nsmooth_quant = 2.0\n":                `cfg:2: quantization.smooth_quant: 2 is not in [0, 1]`,
		"[quantization]\ndynamic_granularity = \"channel\"\n": `cfg:2: quantization.dynamic_granularity: "channel" is not one of tensor, token`,
		"[overrides.op_types.MatMul]\nsmooth_quant = -1.0\n":  `overrides.op_types.MatMul.smooth_quant`,
	} {
		c, err := ParseConfig([]byte(in), "cfg")
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			_, err = c.Embedded()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", in, err, want)
		}
	}
	c, err := ParseConfig([]byte("[quantization]\nsmooth_quant = 0.5\ndynamic_granularity = \"token\"\n"), "cfg")
	if err != nil || c.Validate() != nil || c.Quant.SmoothQuant == nil || *c.Quant.SmoothQuant != 0.5 || c.Quant.DynamicGranularity != "token" {
		t.Errorf("config %+v, %v", c, err)
	}
}
