package converter

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// zeroPoints returns the zero points of the Q/DQ that quantizes a tensor.
func zeroPoints(t *testing.T, m *graph.Model, name string) []int64 {
	t.Helper()
	for _, n := range m.Graph.Nodes {
		if (n.OpType == "QuantizeLinear" && n.Output().Name == name+"_quantized") ||
			(n.OpType == "DequantizeLinear" && n.Input(0).Name == name+"_quantized") {
			var out []int64
			switch d := n.Input(2).Const.Data().(type) {
			case []int8:
				for _, v := range d {
					out = append(out, int64(v))
				}
			case []int16:
				for _, v := range d {
					out = append(out, int64(v))
				}
			case []uint8:
				for _, v := range d {
					out = append(out, int64(v))
				}
			case []uint16:
				for _, v := range d {
					out = append(out, int64(v))
				}
			default:
				return nil // int4 and int32 zero points: the type is checked, not the values
			}
			return out
		}
	}
	t.Fatalf("no Q/DQ for %q", name)
	return nil
}

// TestQNNTypeOnlyOverrides: QNN quantization_overrides that give only types
// (list and object forms, "int"+bitwidth and "int16"-style dtypes, a glob on
// the weights' original names, a float entry, a 32-bit bias) convert
// MobileNetV2Block with exactly those types, and the ranges still come from
// calibration.
func TestQNNTypeOnlyOverrides(t *testing.T) {
	aimet06 := `{
	  "activation_encodings": {
	    "input": [{"bitwidth": 16, "dtype": "int"}],
	    "Clip_1_out": {"dtype": "int16", "is_symmetric": true},
	    "Clip_2_out": {"bitwidth": 8, "dtype": "int", "is_symmetric": "True"},
	    "Add_1_out": {"bitwidth": 16, "dtype": "float"}
	  },
	  "param_encodings": {
	    "conv_w_[12]": {"bitwidth": 4, "dtype": "int", "is_symmetric": "True"},
	    "fc_w": [{"dtype": "uint8", "is_symmetric": "False"}],
	    "fc_b": [{"bitwidth": 32, "dtype": "int"}]
	  }
	}`
	aimet10 := `{"version": "1.0.0",
	  "activation_encodings": [
	    {"name": "input", "dtype": "INT", "bw": 16},
	    {"name": "Clip_1_out", "dtype": "int16", "is_sym": true},
	    {"name": "Clip_2_out", "dtype": "INT", "bw": 8, "is_sym": "True"},
	    {"name": "Add_1_out", "dtype": "FLOAT", "bw": 16}
	  ],
	  "param_encodings": [
	    {"name": "conv_w_[12]", "dtype": "INT", "bw": 4, "is_sym": true, "enc_type": "PER_CHANNEL"},
	    {"name": "fc_w", "dtype": "uint8", "is_sym": false, "enc_type": "PER_TENSOR"},
	    {"name": "fc_b", "dtype": "INT", "bw": 32}
	  ]
	}`
	// The calibration samples convertWith writes: 4 of N(0,1), seed 1.
	r := rand.New(rand.NewPCG(1, 9))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := 0; i < 4*8*16*16; i++ {
		v := float64(float32(r.NormFloat64()))
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	for _, c := range []struct{ dialect, js string }{{"aimet-0.6", aimet06}, {"aimet-1.0", aimet10}} {
		t.Run(c.dialect, func(t *testing.T) {
			rep, q, err := convertWith(t, testmodels.MobileNetV2Block(1), c.js)
			if err != nil {
				t.Fatal(err)
			}
			got := quantTypes(q)
			want := map[string]graph.DataType{
				"input": graph.Uint16, "Clip_1_out": graph.Int16, "Clip_2_out": graph.Int8,
				// The glob names the weights as exported; fold-bn renamed them.
				"conv_w_1_bnfold": graph.Int4, "conv_w_2_bnfold": graph.Int4, "conv_w_bnfold": graph.Int8,
				"fc_w": graph.Uint8, "fc_b": graph.Int32, "logits": graph.Uint8, "Conv_3_out": graph.Uint8,
			}
			for name, dt := range want {
				if got[name] != dt {
					t.Errorf("%s: %v, want %v", name, got[name], dt)
				}
			}
			if _, ok := got["Add_1_out"]; ok {
				t.Error("Add_1_out is quantized; the float entry keeps it float")
			}
			// Symmetric types have zero point 0; the asymmetric uint8 weight does not.
			for _, name := range []string{"Clip_1_out", "Clip_2_out"} {
				if zp := zeroPoints(t, q, name); len(zp) != 1 || zp[0] != 0 {
					t.Errorf("%s: zero point %v, want 0 (symmetric)", name, zp)
				}
			}
			fcScales := 10 // per channel by default; PER_TENSOR in the 1.0.0 file
			if c.dialect == "aimet-1.0" {
				fcScales = 1
			}
			asym := false
			zp := zeroPoints(t, q, "fc_w")
			for _, z := range zp {
				asym = asym || (z != 0 && z != 128)
			}
			if len(zp) != fcScales || !asym {
				t.Errorf("fc_w: zero points %v, want %d asymmetric ones", zp, fcScales)
			}
			reps := map[string]*TensorReport{}
			for _, tr := range rep.Tensors {
				reps[tr.Name] = tr
			}
			// Ranges from calibration: the input's is its samples' min and max,
			// on a 16-bit asymmetric grid.
			in := reps["input"]
			if in.Observer != "minmax" || in.Range == nil || float64(in.Range[0]) != lo || float64(in.Range[1]) != hi {
				t.Fatalf("input: observer %q range %v, want minmax [%v, %v]", in.Observer, in.Range, lo, hi)
			}
			if s := float64(in.Encoding.Scale[0]); math.Abs(s-(hi-lo)/65535)/s > 1e-3 {
				t.Errorf("input scale %v, want (max-min)/65535 = %v", s, (hi-lo)/65535)
			}
			if reps["Clip_1_out"].Observer != "minmax" || reps["Clip_1_out"].Range == nil {
				t.Errorf("Clip_1_out was not calibrated: %+v", reps["Clip_1_out"])
			}
			if src := reps["conv_w_1_bnfold"].Override; src != `tensors["conv_w_[12]"]` {
				t.Errorf("conv_w_1_bnfold set by %q", src)
			}
			if n := len(reps["conv_w_1_bnfold"].Encoding.Scale); n != 48 {
				t.Errorf("conv_w_1_bnfold: %d scales, want 48 (per channel)", n)
			}
			if n := len(reps["fc_w"].Encoding.Scale); n != fcScales {
				t.Errorf("fc_w: %d scales, want %d", n, fcScales)
			}
		})
	}
}

// TestQNNBiasEntryErrors: a 32-bit entry names a bias onnxq quantizes.
func TestQNNBiasEntryErrors(t *testing.T) {
	_, _, err := convertWith(t, testmodels.MobileNetV2Block(1), `{"param_encodings": {"fc_w": [{"bitwidth": 32, "dtype": "int"}]}}`)
	if err == nil || err.Error() != `overrides: tensors["fc_w"]: int32 is the type of biases, and "fc_w" is not a bias onnxq quantizes (one of a Conv, ConvTranspose or Gemm with a quantized input and weight)` {
		t.Errorf("got %v", err)
	}
}

// TestQNNFloatBias: a float param entry on a bias keeps that bias float.
func TestQNNFloatBias(t *testing.T) {
	rep, q, err := convertWith(t, testmodels.MobileNetV2Block(1), `{"param_encodings": {"fc_b": {"bitwidth": 32, "dtype": "float"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if dt, ok := quantTypes(q)["fc_b"]; ok {
		t.Errorf("fc_b quantized to %v", dt)
	}
	found := false
	for _, f := range rep.FloatTensors {
		found = found || (f.Name == "fc_b" && f.Reason == `overrides: tensors["fc_b"]`)
	}
	if !found {
		t.Errorf("float tensors %v", rep.FloatTensors)
	}
}
