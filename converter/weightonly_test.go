package converter

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
)

// llmTestModel is X [2, 3, k] x W [k, n] (MatMul), and Z = X2 [4, k] x W2^T + b
// (Gemm, transB) when gemm is set; weights seeded.
func llmTestModel(k, n int, gemm bool) *graph.Model {
	b := testmodels.NewBuilder(7, 17)
	x := b.Input("x", 2, 3, k)
	b.Output(b.MatMul(x, b.Const("w", []int{k, n}, b.Normal(k*n, 0, 0.3))))
	if gemm {
		b.Output(b.Gemm(b.Input("x2", 4, k), n))
	}
	return b.M
}

func saveModel(t *testing.T, m *graph.Model, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "model.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// symRTN is the README's symmetric round-to-nearest fake quantization of a
// [k, n] weight in groups of g rows (the last group shorter when g does not
// divide k): s = max|w|/qmax over the group, q = clip(round(w/s), -qmax-1, qmax).
func symRTN(w []float32, k, n, g int, qmax float64) []float32 {
	out := make([]float32, len(w))
	for c := 0; c < n; c++ {
		for r0 := 0; r0 < k; r0 += g {
			r1 := min(r0+g, k)
			var amax float64
			for r := r0; r < r1; r++ {
				amax = math.Max(amax, math.Abs(float64(w[r*n+c])))
			}
			s := float32(amax / qmax)
			if s == 0 {
				s = 1
			}
			for r := r0; r < r1; r++ {
				q := math.RoundToEven(float64(w[r*n+c] / s))
				q = math.Max(-qmax-1, math.Min(qmax, q))
				out[r*n+c] = float32(q) * s
			}
		}
	}
	return out
}

func seqInput(k int) *graph.Tensor {
	x := make([]float32, 2*3*k)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37) * 2)
	}
	return graph.Float32Tensor([]int{2, 3, k}, x)
}

func refMatMul(x, w []float32, rows, k, n int) []float32 {
	y := make([]float32, rows*n)
	for r := 0; r < rows; r++ {
		for c := 0; c < n; c++ {
			var s float64
			for i := 0; i < k; i++ {
				s += float64(x[r*k+i]) * float64(w[i*n+c])
			}
			y[r*n+c] = float32(s)
		}
	}
	return y
}

// TestWeightOnlyPaddedBlocks: K = 40 in blocks of 16 (16, 16, 8) or 32 (32,
// 8): the blocked QDQ model and its MatMulNBits form both compute x times the
// README's group-RTN weight, the short last group scaled by its own values.
func TestWeightOnlyPaddedBlocks(t *testing.T) {
	const k, n = 40, 6
	m := llmTestModel(k, n, false)
	w := m.Graph.Value("w_0")
	if w == nil { // the builder's name for the first constant
		for _, v := range m.Graph.Values() {
			if v.Const != nil && v.Const.Rank() == 2 {
				w = v
			}
		}
	}
	wf := append([]float32(nil), w.Const.Float32s()...)
	x := seqInput(k)
	for _, wt := range []struct {
		dt   graph.DataType
		qmax float64
	}{{graph.Int4, 7}, {graph.Int8, 127}} {
		for _, block := range []int{16, 32} {
			want := refMatMul(x.Float32s(), symRTN(wf, k, n, block, wt.qmax), 6, k, n)
			for _, format := range []string{FormatONNX, FormatMatMulNBits} {
				dir := t.TempDir()
				out := filepath.Join(dir, "q.onnx")
				_, err := Convert(context.Background(), Options{Model: saveModel(t, m, dir), Output: out, WeightOnly: true, WeightType: wt.dt, WeightBlockSize: block, WeightFormat: format, NoMeasure: true})
				if err != nil {
					t.Fatalf("%s block %d %s: %v", wt.dt.Short(), block, format, err)
				}
				q, err := graph.Load(out)
				if err != nil {
					t.Fatal(err)
				}
				ops := map[string]int{}
				for _, nd := range q.Graph.Nodes {
					ops[nd.OpType]++
					if nd.OpType == "MatMulNBits" {
						kk, _ := nd.AttrInt("K", 0)
						bs, _ := nd.AttrInt("block_size", 0)
						if kk != k || int(bs) != block {
							t.Errorf("MatMulNBits K %d block_size %d, want %d %d", kk, bs, k, block)
						}
					}
				}
				if format == FormatMatMulNBits && (ops["MatMulNBits"] != 1 || ops["MatMul"] != 0 || ops["DequantizeLinear"] != 0) {
					t.Errorf("%s: ops %v, want one MatMulNBits", format, ops)
				}
				if format == FormatONNX && (ops["DequantizeLinear"] != 1 || ops["MatMul"] != 1) {
					t.Errorf("%s: ops %v, want DequantizeLinear -> MatMul", format, ops)
				}
				got := runOnce(t, q, x)
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%s block %d %s: y[%d] = %v, group RTN gives %v", wt.dt.Short(), block, format, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestWeightFormatErrors: options the formats cannot write are one-line errors.
func TestWeightFormatErrors(t *testing.T) {
	dir := t.TempDir()
	model := saveModel(t, llmTestModel(40, 6, false), dir)
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 24}, "not a power of two"},
		{Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 8, WeightFormat: FormatMatMulNBits}, "at least 16"},
		{Options{WeightOnly: true, WeightType: graph.Int16, WeightFormat: FormatMatMulNBits}, "4- or 8-bit"},
		{Options{WeightOnly: true, WeightFormat: FormatORT}, "--dynamic"},
		{Options{WeightOnly: true, WeightFormat: "qnn"}, "onnx, matmulnbits or ort"},
		{Options{WeightOnly: true, AccuracyLevel: 4}, "matmulnbits"},
		{Options{Dynamic: true, WeightType: graph.Int4}, "int8 or uint8"},
		{Options{Dynamic: true, WeightBlockSize: 32}, "does not go with"},
	} {
		c.opt.Model, c.opt.Output, c.opt.NoMeasure = model, filepath.Join(dir, "q.onnx"), true
		_, err := Convert(context.Background(), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v, want one line with %q", c.opt, err, c.want)
		}
	}
}

// TestMatMulNBitsStatic: static W8A8 with blocked int4 weights and
// --weight-format matmulnbits packs the weight MatMul and leaves the MatMul of
// two activations (scores = s s^T) in QDQ form; both formats compute the same.
func TestMatMulNBitsStatic(t *testing.T) {
	const k, n = 40, 16
	b := testmodels.NewBuilder(11, 17)
	x := b.Input("x", 2, 3, k)
	s := b.MatMul(x, b.Const("w", []int{k, n}, b.Normal(k*n, 0, 0.3)))
	b.Output(b.MatMul(s, b.Transpose(s, 0, 2, 1)))
	dir, model, cal := withSamples(t, b.M, 8, []int{2, 3, k}, 5)
	var outs [2][]float32
	for i, format := range []string{FormatONNX, FormatMatMulNBits} {
		out := filepath.Join(dir, format+".onnx")
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, WeightType: graph.Int4, WeightBlockSize: 16, WeightFormat: format, NoMeasure: true})
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
		if format == FormatMatMulNBits {
			if ops["MatMulNBits"] != 1 || ops["MatMul"] != 1 {
				t.Errorf("ops %v, want one MatMulNBits and the activation MatMul", ops)
			}
			last := rep.Passes[len(rep.Passes)-2]
			if last.Pass != "matmulnbits" || last.Count != 1 || len(last.Notes) != 1 {
				t.Errorf("report pass %+v, want 1 rewritten and 1 noted", last)
			}
		}
		outs[i] = runOnce(t, q, seqInput(k))
	}
	for i := range outs[0] {
		if d := math.Abs(float64(outs[0][i] - outs[1][i])); d > 1e-4*(1+math.Abs(float64(outs[0][i]))) {
			t.Fatalf("y[%d]: QDQ %v, MatMulNBits %v", i, outs[0][i], outs[1][i])
		}
	}
}

// TestGatherTables: a Gather's constant table is float unless a rule types
// it (the report says why); a tensor or node rule quantizes it per row.
func TestGatherTables(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	table := b.Const("embed", []int{10, 8}, b.Normal(80, 0, 1))
	ids := b.G.AddInput("ids", graph.Int64, []int64{1, 4})
	gather := b.G.AddNode("Gather", "embed_lookup", []*graph.Value{table, ids}, []string{"h"})
	b.G.AddOutput(gather.Output())
	// A MatMul after it, so that every conversion has a weight to quantize.
	mm := b.G.AddNode("MatMul", "proj", []*graph.Value{gather.Output(), b.Const("proj_w", []int{8, 3}, b.Normal(24, 0, 1))}, []string{"y"})
	b.G.AddOutput(mm.Output())
	dir := t.TempDir()
	model := saveModel(t, b.M, dir)
	x := graph.Int64Tensor([]int{1, 4}, []int64{3, 0, 9, 3})
	for _, c := range []struct {
		name  string
		rules *overrides.File
		float bool
	}{
		{"no rule", nil, true},
		{"tensor rule", &overrides.File{Version: 1, Tensors: map[string]*overrides.Tensor{table.Name: {DType: "int8"}}}, false},
		{"node rule", &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"embed_lookup": {WeightDType: "int4"}}}, false},
	} {
		out := filepath.Join(dir, "q.onnx")
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, WeightOnly: true, Overrides: c.rules, NoMeasure: true})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		kept := false
		for _, f := range rep.FloatTensors {
			kept = kept || (f.Name == table.Name && strings.Contains(f.Reason, "Gather table"))
		}
		if kept != c.float {
			t.Errorf("%s: table kept float %v, want %v (%v)", c.name, kept, c.float, rep.FloatTensors)
		}
		q, err := graph.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		dqs := 0
		for _, nd := range q.Graph.Nodes {
			if nd.OpType == "DequantizeLinear" && len(nd.Output().Consumers) > 0 && nd.Output().Consumers[0].OpType == "Gather" {
				dqs++
			}
		}
		if (dqs == 0) != c.float {
			t.Errorf("%s: %d DequantizeLinear before the Gather", c.name, dqs)
		}
		s, err := kernels.NewSession(q, kernels.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(map[string]*graph.Tensor{"ids": x})
		if err != nil {
			t.Fatal(err)
		}
		got, tab := res["h"].Float32s(), table.Const.Float32s()
		for i, id := range x.Int64s() {
			row := tab[id*8 : id*8+8]
			var amax float64
			for _, v := range row {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			step := 0.0 // float: exact; quantized: within half a step of its row's scale
			switch {
			case c.rules == nil:
			case c.rules.Tensors != nil:
				step = amax / 127
			default:
				step = amax / 7
			}
			for j, v := range row {
				if d := math.Abs(float64(got[i*8+j] - v)); d > step/2+1e-6 {
					t.Errorf("%s: h[%d][%d] = %v, table %v (step %v)", c.name, i, j, got[i*8+j], v, step)
				}
			}
		}
	}
}
