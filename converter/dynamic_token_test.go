package converter

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// perTokenRef is per-token dynamic W8A8 by hand: each row of x [rows, k]
// quantized symmetrically with s_row = max|x_row| / 127 to round(x/s_row) in
// [-127, 127], the weight per column to int8 with s = max|w|/127, and
// y = (sum of integer products x w_scale[n]) x s_row (+ bias). w is [k, n].
func perTokenRef(x, w, bias []float32, rows, k, n int) []float32 {
	y := make([]float32, rows*n)
	ws := make([]float32, n)
	for c := range ws {
		var amax float64
		for r := 0; r < k; r++ {
			amax = math.Max(amax, math.Abs(float64(w[r*n+c])))
		}
		ws[c] = float32(amax / 127)
	}
	for r := 0; r < rows; r++ {
		var amax float32
		for i := 0; i < k; i++ {
			amax = max(amax, float32(math.Abs(float64(x[r*k+i]))))
		}
		as := amax / 127
		for c := 0; c < n; c++ {
			var acc float64
			for i := 0; i < k; i++ {
				acc += math.RoundToEven(float64(x[r*k+i]/as)) * math.Max(-128, math.Min(127, math.RoundToEven(float64(w[i*n+c]/ws[c]))))
			}
			y[r*n+c] = float32(acc) * ws[c] * as
			if bias != nil {
				y[r*n+c] += bias[c]
			}
		}
	}
	return y
}

// TestDynamicPerToken: --dynamic --dynamic-granularity token writes a
// per-row symmetric quantizer and MatMulInteger (standard) or
// MatMulIntegerToFloat (ort), onnxq runs both, each equals per-token
// dynamic W8A8 by hand, and with one large row the per-token error on the
// other rows is far below the per-tensor one.
func TestDynamicPerToken(t *testing.T) {
	const k, n = 40, 6
	m := llmTestModel(k, n, true)
	w, gw, gb := llmTestWeights(m, k, n)
	x := seqInput(k)
	for i := 0; i < k; i++ { // row 0 is 50x the others
		x.Float32s()[i] *= 50
	}
	x2 := graph.Float32Tensor([]int{4, k}, append([]float32(nil), x.Float32s()[k:5*k]...))
	want := perTokenRef(x.Float32s(), w, nil, 6, k, n)
	want2 := perTokenRef(x2.Float32s(), gw, gb, 4, k, n)
	exact := make([]float64, 6*n) // the float MatMul
	for r := 0; r < 6; r++ {
		for c := 0; c < n; c++ {
			for i := 0; i < k; i++ {
				exact[r*n+c] += float64(x.Float32s()[r*k+i]) * float64(w[i*n+c])
			}
		}
	}
	rowErr := func(y []float32) float64 { // largest error on rows 1..5
		var e float64
		for i := n; i < len(y); i++ {
			e = math.Max(e, math.Abs(float64(y[i])-exact[i]))
		}
		return e
	}
	perTensor := rowErr(dynamicRef(x.Float32s(), w, nil, 6, k, n))
	if tok := rowErr(want); tok > perTensor/10 {
		t.Errorf("small rows: per-token error %.3g, per-tensor %.3g; want 10x less", tok, perTensor)
	}
	for _, format := range []string{FormatONNX, FormatORT} {
		dir := t.TempDir()
		out := filepath.Join(dir, "q.onnx")
		rep, err := Convert(context.Background(), Options{Model: saveModel(t, m, dir), Output: out, Dynamic: true, DynamicPerToken: true, WeightFormat: format, NoMeasure: true})
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
		wantOps := map[string]int{"ReduceMax": 2, "Round": 2, "MatMulInteger": 2, "DynamicQuantizeLinear": 0}
		if format == FormatORT {
			wantOps = map[string]int{"ReduceMax": 2, "MatMulIntegerToFloat": 2, "MatMulInteger": 0}
		}
		for op, c := range wantOps {
			if ops[op] != c {
				t.Errorf("%s: %d %s, want %d (ops %v)", format, ops[op], op, c, ops)
			}
		}
		if last := rep.Passes[len(rep.Passes)-2]; last.Pass != "dynamic (per token)" || last.Count != 2 {
			t.Errorf("%s: report pass %+v, want dynamic (per token) on 2 layers", format, last)
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
					t.Fatalf("%s %s[%d] = %v, per-token W8A8 by hand %v", format, name, i, got[i], ref[i])
				}
			}
		}
	}
	if _, err := Convert(context.Background(), Options{Model: saveModel(t, m, t.TempDir()), Output: filepath.Join(t.TempDir(), "q.onnx"), DynamicPerToken: true, WeightOnly: true}); err == nil || !strings.Contains(err.Error(), "--dynamic") {
		t.Errorf("per-token without --dynamic: %v", err)
	}
}
