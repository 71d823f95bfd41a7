package converter

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// dynamicRef is dynamic W8A8 by hand: x quantized per tensor to uint8 over
// its range widened to 0 (scale (max-min)/255, zero point round(-min/scale)),
// the weight per column to int8 with s = max|w|/127, and y = sum of integer
// products x a_scale x w_scale[n] (+ bias). w is [k, n].
func dynamicRef(x, w, bias []float32, rows, k, n int) []float32 {
	lo, hi := float32(0), float32(0)
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	as := (hi - lo) / 255
	azp := math.RoundToEven(float64(-lo / as))
	xq := make([]float64, len(x))
	for i, v := range x {
		xq[i] = math.Max(0, math.Min(255, math.RoundToEven(float64(v/as))+azp)) - azp
	}
	y := make([]float32, rows*n)
	for c := 0; c < n; c++ {
		var amax float64
		for r := 0; r < k; r++ {
			amax = math.Max(amax, math.Abs(float64(w[r*n+c])))
		}
		ws := float32(amax / 127)
		for r := 0; r < rows; r++ {
			var acc float64
			for i := 0; i < k; i++ {
				acc += xq[r*k+i] * math.Max(-128, math.Min(127, math.RoundToEven(float64(w[i*n+c]/ws))))
			}
			y[r*n+c] = float32(acc) * (as * ws)
			if bias != nil {
				y[r*n+c] += bias[c]
			}
		}
	}
	return y
}

// llmTestWeights are llmTestModel's MatMul weight [k, n], and its Gemm's
// (transB) weight turned to [k, n] and bias.
func llmTestWeights(m *graph.Model, k, n int) (w, gw, gb []float32) {
	for _, nd := range m.Graph.Nodes {
		switch nd.OpType {
		case "MatMul":
			w = nd.Input(1).Const.Float32s()
		case "Gemm": // [n, k] -> [k, n]
			src := nd.Input(1).Const.Float32s()
			gw = make([]float32, k*n)
			for r := 0; r < n; r++ {
				for c := 0; c < k; c++ {
					gw[c*n+r] = src[r*k+c]
				}
			}
			gb = nd.Input(2).Const.Float32s()
		}
	}
	return w, gw, gb
}

// TestDynamicMatches: --dynamic rewrites the MatMul and the Gemm (transB,
// bias) into DynamicQuantizeLinear -> MatMulInteger -> scale (standard) or
// DynamicQuantizeMatMul (ort); onnxq runs both and each equals dynamic W8A8
// computed by hand.
func TestDynamicMatches(t *testing.T) {
	const k, n = 40, 6
	m := llmTestModel(k, n, true)
	w, gw, gb := llmTestWeights(m, k, n)
	x := seqInput(k)
	x2 := graph.Float32Tensor([]int{4, k}, x.Float32s()[:4*k])
	want := dynamicRef(x.Float32s(), w, nil, 6, k, n)
	want2 := dynamicRef(x2.Float32s(), gw, gb, 4, k, n)
	for _, format := range []string{FormatONNX, FormatORT} {
		dir := t.TempDir()
		out := filepath.Join(dir, "q.onnx")
		rep, err := Convert(context.Background(), Options{Model: saveModel(t, m, dir), Output: out, Dynamic: true, WeightFormat: format, NoMeasure: true})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		q, err := graph.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]int{}
		for _, nd := range q.Graph.Nodes {
			ops[nd.OpType]++
		}
		wantOps := map[string]int{"DynamicQuantizeLinear": 2, "MatMulInteger": 2}
		if format == FormatORT {
			wantOps = map[string]int{"DynamicQuantizeMatMul": 2}
		}
		for op, c := range wantOps {
			if ops[op] != c {
				t.Errorf("%s: %d %s, want %d (ops %v)", format, ops[op], op, c, ops)
			}
		}
		if ops["MatMul"]+ops["Gemm"]+ops["DequantizeLinear"] != 0 {
			t.Errorf("%s: float MatMul/Gemm or DequantizeLinear left: %v", format, ops)
		}
		if last := rep.Passes[len(rep.Passes)-2]; last.Pass != "dynamic" || last.Count != 2 {
			t.Errorf("%s: report pass %+v, want dynamic on 2 layers", format, last)
		}
		s, err := kernels.NewSession(q, kernels.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(map[string]*graph.Tensor{"x": x, "x2": x2})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for name, ref := range map[string][]float32{q.Graph.Outputs[0].Name: want, q.Graph.Outputs[1].Name: want2} {
			got := res[name].Float32s()
			for i := range ref {
				if d := math.Abs(float64(got[i] - ref[i])); d > 1e-5*(1+math.Abs(float64(ref[i]))) {
					t.Fatalf("%s %s[%d] = %v, dynamic W8A8 by hand %v", format, name, i, got[i], ref[i])
				}
			}
		}
	}
}
