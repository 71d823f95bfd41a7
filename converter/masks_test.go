package converter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

const attnSeq, attnDim = 12, 16

// attentionBlock is one head of causal self-attention on x [1, S, D]: Q/K/V
// projections, scaled scores plus an additive causal mask, Softmax, the
// weighted sum of V and an output projection. mask picks how the mask is
// made, as exporters make it:
//   - "where": Where(key <= query, 0, -3.4e38), the condition computed from
//     the input's shape (stories260K's graph);
//   - "const": a constant [S, S] mask with -inf above the diagonal;
//   - "bert": (1 - Cast(key <= query)) * -1e4, then Max(scores, finfo.min).
//
// It returns the model and the names of the mask and the masked scores.
func attentionBlock(seed uint64, mask string) (m *graph.Model, maskName, scoresName string) {
	b := testmodels.NewBuilder(seed, 17)
	g := b.G
	node := func(op string, attrs []*onnxpb.AttributeProto, in ...*graph.Value) *graph.Value {
		name := g.UniqueName(op)
		return g.AddNode(op, name, in, []string{name + "_out"}, attrs...).Output()
	}
	scalar := func(name string, v int64) *graph.Value {
		return g.AddInitializer(g.UniqueName(name), graph.Int64Tensor([]int{}, []int64{v}))
	}
	f32 := func(name string, v float32) *graph.Value { return b.Const(name, nil, []float32{v}) }
	proj := func(x *graph.Value, name string) *graph.Value {
		w := b.Const(name, []int{attnDim, attnDim}, b.Normal(attnDim*attnDim, 0, 1/math.Sqrt(attnDim)))
		return node("MatMul", nil, x, w)
	}
	x := b.Input("x", 1, attnSeq, attnDim)
	// The sequence length is left open, as exporters of language models leave
	// it: a static one would fold the mask into a constant.
	if mask != "const" {
		x.SetTensorType(graph.Float, []int64{1, -1, attnDim})
	}
	q, k, v := proj(x, "wq"), proj(x, "wk"), proj(x, "wv")
	kt := node("Transpose", []*onnxpb.AttributeProto{graph.AttrIntsOf("perm", 0, 2, 1)}, k)
	scores := node("Mul", nil, node("MatMul", nil, q, kt), f32("scale", float32(1/math.Sqrt(attnDim))))
	causal := func() *graph.Value { // key position <= query position, [S, S]
		seq := node("Gather", nil, node("Shape", nil, x), scalar("one", 1))
		pos := node("Range", nil, scalar("zero", 0), seq, scalar("step", 1))
		qpos := node("Unsqueeze", nil, pos, b.Int64Const("axis", 1))
		return node("LessOrEqual", nil, pos, qpos)
	}
	var maskV, masked *graph.Value
	switch mask {
	case "where":
		maskV = node("Where", nil, causal(), f32("zero_f", 0), f32("neg_big", -math.MaxFloat32))
		masked = node("Add", nil, scores, maskV)
	case "const":
		c := make([]float32, attnSeq*attnSeq)
		for i := 0; i < attnSeq; i++ {
			for j := i + 1; j < attnSeq; j++ {
				c[i*attnSeq+j] = float32(math.Inf(-1))
			}
		}
		maskV = b.Const("causal_mask", []int{attnSeq, attnSeq}, c)
		masked = node("Add", nil, scores, maskV)
	case "bert":
		allowed := node("Cast", []*onnxpb.AttributeProto{graph.AttrIntOf("to", int64(graph.Float))}, causal())
		maskV = node("Mul", nil, node("Sub", nil, f32("one_f", 1), allowed), f32("neg_1e4", -1e4))
		masked = node("Max", nil, node("Add", nil, scores, maskV), f32("finfo_min", -math.MaxFloat32))
	}
	probs := node("Softmax", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", -1)}, masked)
	out := proj(node("MatMul", nil, probs, v), "wo")
	b.Output(out)
	return b.M, maskV.Name, masked.Name
}

// TestAttentionMaskStaysFloat: on the seeded attention block, with each way
// of making the mask, the mask and the masked scores stay float up to the
// Softmax (reported with the reason), the Softmax output is quantized, every
// written scale is sane, and the output stays close to the float model's.
func TestAttentionMaskStaysFloat(t *testing.T) {
	for _, style := range []string{"where", "const", "bert"} {
		t.Run(style, func(t *testing.T) {
			m, maskName, scoresName := attentionBlock(7, style)
			dir, model, cal := withSamples(t, m, 16, []int{1, attnSeq, attnDim}, 3)
			for _, kind := range []string{"minmax", "entropy"} {
				out := filepath.Join(dir, kind+".onnx")
				rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{Kind: kind}})
				if err != nil {
					t.Fatal(err)
				}
				reasons := map[string]string{}
				for _, f := range rep.FloatTensors {
					reasons[f.Name] = f.Reason
				}
				want := []string{scoresName}
				if style != "const" { // a constant is never an observed activation
					want = append(want, maskName)
				}
				for _, n := range want {
					if !strings.Contains(reasons[n], "attention mask path") {
						t.Errorf("%s: %q not reported float as a mask (reasons %v)", kind, n, reasons)
					}
				}
				for _, tr := range rep.Tensors {
					if tr.Encoding != nil && tr.Kind == "activation" && tr.Encoding.Scale[0] > 1 {
						t.Errorf("%s: %q has scale %g", kind, tr.Name, tr.Encoding.Scale[0])
					}
				}
				q, err := graph.Load(out)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range q.Graph.Nodes {
					if n.OpType != "Softmax" {
						continue
					}
					if p := n.Input(0).Producer; p == nil || p.OpType == "DequantizeLinear" {
						t.Errorf("%s: Softmax input comes from %v, want the float mask path", kind, p)
					}
					if c := n.Output().Consumers; len(c) != 1 || c[0].OpType != "QuantizeLinear" {
						t.Errorf("%s: Softmax output is not quantized", kind)
					}
				}
				worst := 1.0
				for seed := uint64(100); seed < 104; seed++ {
					x := graph.NewTensor(graph.Float, []int{1, attnSeq, attnDim})
					copy(x.Float32s(), testmodels.NewBuilder(seed, 17).Normal(x.Len(), 0, 1))
					worst = min(worst, cosine(runOnce(t, m, x), runOnce(t, q, x)))
				}
				t.Logf("%s %s: output cosine to float >= %.5f; float tensors %v", style, kind, worst, reasons)
				// Entropy clips this block's Softmax output (most of its mass is
				// in a few large values): that, not the mask, limits it.
				if kind == "minmax" && worst < 0.99 {
					t.Errorf("%s: cosine to float %.5f < 0.99", kind, worst)
				}
			}
		})
	}
}

// TestFindMasksStopsAtSoftmax: the mask reaches the Softmax input and not its
// output; tensors off the mask's path are not masks.
func TestFindMasksStopsAtSoftmax(t *testing.T) {
	m, maskName, scoresName := attentionBlock(1, "bert")
	order, err := m.Graph.TopoOrder()
	if err != nil {
		t.Fatal(err)
	}
	masks := findMasks(order)
	for _, n := range m.Graph.Nodes {
		out := n.Output().Name
		switch {
		case n.OpType == "Softmax" && masks[out] != "":
			t.Errorf("Softmax output %q taken for a mask", out)
		case n.OpType == "MatMul" && masks[out] != "":
			t.Errorf("MatMul output %q taken for a mask", out)
		}
	}
	for _, n := range []string{maskName, scoresName} {
		if !strings.Contains(masks[n], `sentinel -1e+04 in "neg_1e4"`) {
			t.Errorf("%q: origin %q, want the -1e4 sentinel", n, masks[n])
		}
	}
	if len(masks) != 3 { // the mask, scores + mask, and the clamp
		t.Errorf("masks %v, want 3", masks)
	}
}

// TestAbsurdRangeStaysFloat: a mask that arrives as a graph input cannot be
// recognised from the graph; its calibrated range, and that of the scores it
// is added to, reach -3.4e38. Neither is written as an encoding (whatever the
// observer): both stay float with the reason.
func TestAbsurdRangeStaysFloat(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	x := b.Input("x", 1, 4, 8)
	mask := b.Input("mask", 1, 4, 8)
	w := b.Const("w", []int{8, 8}, b.Normal(64, 0, 0.3))
	s := b.G.AddNode("MatMul", "scores", []*graph.Value{x, w}, []string{"scores_out"}).Output()
	sum := b.Add(s, mask)
	b.Output(b.Softmax(sum))
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	if err := graph.Save(b.M, model); err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(dir, "calib")
	for _, in := range []string{"x", "mask"} {
		mustMkdir(t, filepath.Join(cal, in))
	}
	for i := 0; i < 4; i++ {
		xs := graph.Float32Tensor([]int{1, 4, 8}, b.Normal(32, 0, 1))
		ms := graph.NewTensor(graph.Float, []int{1, 4, 8})
		for j := range ms.Float32s() {
			if j%8 > i+4 {
				ms.Float32s()[j] = -math.MaxFloat32
			}
		}
		for in, v := range map[string]*graph.Tensor{"x": xs, "mask": ms} {
			if err := npy.WriteFile(filepath.Join(cal, in, fmt.Sprintf("s%d.npy", i)), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, kind := range []string{"minmax", "entropy", "percentile", "mse"} {
		out := filepath.Join(dir, kind+".onnx")
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{Kind: kind}})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		reasons := map[string]string{}
		for _, f := range rep.FloatTensors {
			reasons[f.Name] = f.Reason
		}
		for _, n := range []string{"mask", sum.Name} {
			if r := reasons[n]; !strings.Contains(r, "not finite") && !strings.Contains(r, "beyond 1e+30") {
				t.Errorf("%s: %q: reason %q, want an unusable range", kind, n, r)
			}
		}
		for _, tr := range rep.Tensors {
			if tr.Name == "mask" || tr.Name == sum.Name {
				t.Errorf("%s: %q was written with scale %v", kind, tr.Name, tr.Encoding.Scale)
			}
		}
		if _, err := os.Stat(out); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

func TestRangeAndScaleProblems(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, c := range []struct {
		lo, hi float32
		want   string
	}{
		{-1, 1, ""},
		{-1e29, 1, ""},
		{-inf, 8.3e34, "not finite"},
		{float32(math.NaN()), 1, "not finite"},
		{-3.4028235e38, 16, "beyond 1e+30"},
		{0, 2e30, "beyond 1e+30"},
	} {
		if got := rangeProblem(c.lo, c.hi); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("rangeProblem(%g, %g) = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
	// -1e13 is below 1e30 but gives a uint8 scale of 3.9e10.
	for _, c := range []struct {
		lo   float32
		want bool
	}{{-1e9, false}, {-1e13, true}} {
		enc, err := passes.ComputeEncoding(c.lo, 1, graph.Uint8, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := scaleProblem(enc, c.lo, 1) != ""; got != c.want {
			t.Errorf("scaleProblem at lo %g: %v, want %v (scale %g)", c.lo, got, c.want, enc.Scale[0])
		}
	}
}

type failingObserver struct{}

func (failingObserver) Observe([]float32) { panic("not called") }
func (failingObserver) Range() (float32, float32, error) {
	return 0, 0, errors.New("no values observed")
}

type panickingRange struct{}

func (panickingRange) Observe([]float32)                { panic("not called") }
func (panickingRange) Range() (float32, float32, error) { panic("index out of range") }

// TestRangeFailureKeepsTensorFloat: an observer that cannot give a range
// leaves that tensor float with the reason; the others keep their ranges. A
// crash in a range search still fails the conversion.
func TestRangeFailureKeepsTensorFloat(t *testing.T) {
	good, err := calib.New(calib.Config{})
	if err != nil {
		t.Fatal(err)
	}
	good.Observe([]float32{-1, 2})
	got, failed, err := ranges([]string{"a", "b"}, map[string]calib.Observer{"a": good, "b": failingObserver{}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != [2]float32{-1, 2} || len(got) != 1 {
		t.Errorf("ranges %v", got)
	}
	if !strings.Contains(failed["b"], "no values observed") || len(failed) != 1 {
		t.Errorf("failed %v", failed)
	}
	_, _, err = ranges([]string{"a", "c"}, map[string]calib.Observer{"a": good, "c": panickingRange{}}, 2)
	if err == nil || !strings.Contains(err.Error(), `tensor "c": range search failed: index out of range`) {
		t.Errorf("got %v", err)
	}
}
