package converter

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
	"github.com/onnxq/onnxq/wround"
)

// awqEngine runs the weight rounding engine with AWQ (int4: blocks of block
// along K for MatMul, per output channel for Conv) on every MatMul and Conv
// weight of the model saved at model, and returns the folded float model and
// what the engine returned. The weights of the nodes named in pin have
// encodings from the overrides.
func awqEngine(t *testing.T, model, cal string, block int, pin ...string) (*graph.Model, map[string][]float32, map[string]*passes.Encoding, []string, *passes.Change, *passes.State) {
	t.Helper()
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string]*passes.Encoding{}
	var reports []*TensorReport
	for _, n := range m.Graph.Nodes {
		if n.OpType != "MatMul" && n.OpType != "Conv" || n.Input(1).Const == nil {
			continue
		}
		bs := block
		if n.OpType == "Conv" {
			bs = 0
		}
		enc, err := passes.WeightEncoding(n.Input(1).Const, 0, bs, graph.Int4, true)
		if err != nil {
			t.Fatal(err)
		}
		weights[n.Input(1).Name] = enc
		tr := &TensorReport{Name: n.Input(1).Name, Kind: "weight", Encoding: enc}
		if slices.Contains(pin, n.Name) {
			tr.Observer = "overrides"
		}
		reports = append(reports, tr)
	}
	rep, st := &Report{}, passes.NewState()
	opt := Options{Calib: cal, WeightType: graph.Int4, WeightRounding: "awq", Rounding: wround.DefaultOptions()}
	rounded, inserted, err := roundWeights(context.Background(), m, makePlan(m, RuntimeGeneric), newSettings(), opt, weights, reports, rep, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Passes {
		if c.Pass == "awq" {
			t.Logf("%s", strings.Join(c.Notes, "\n"))
			return m, rounded, weights, inserted, c, st
		}
	}
	t.Fatalf("no awq pass in the report: %+v", rep.Passes)
	return nil, nil, nil, nil, nil, nil
}

// checkAWQFold: the folded float model computes what the original does
// within 1e-5 relative, and each rounded weight is a code of its grid
// (refitted, possibly clipped, and divided with a producer's outputs).
func checkAWQFold(t *testing.T, orig, m *graph.Model, shape []int, rounded map[string][]float32, weights map[string]*passes.Encoding) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 4 {
		x := graph.NewTensor(graph.Float, shape)
		for j, d := 0, x.Float32s(); j < len(d); j++ {
			d[j] = float32(r.NormFloat64())
		}
		if d := maxRelDiff(runOnce(t, orig, x), runOnce(t, m, x)); d > 1e-5 {
			t.Errorf("sample %d: the fold moved the float output by %.3g relative (want < 1e-5)", i, d)
		}
	}
	if len(rounded) != len(weights) {
		t.Fatalf("%d weights rounded, want %d", len(rounded), len(weights))
	}
	for name, w := range rounded {
		enc := weights[name]
		fw := m.Graph.Value(name).Const.Float32s()
		var num, den float64
		for i, v := range w {
			num += float64(v-fw[i]) * float64(v-fw[i])
			den += float64(fw[i]) * float64(fw[i])
		}
		// 4-bit codes of the folded weights (not of the weights before a
		// fold divided them) are within ~15% in norm.
		if rel := math.Sqrt(num / den); rel > 0.15 {
			t.Errorf("weight %q: rounded values %.3g from the folded float weights in relative norm", name, rel)
		}
		idx := enc.ScaleIndex(m.Graph.Value(name).Const.Shape)
		for i, v := range w {
			q := float64(v) / float64(enc.Scale[idx(i)])
			if math.Abs(q-math.Round(q)) > 1e-3 || q < -8.001 || q > 7.001 {
				t.Fatalf("weight %q [%d]: %v is %.4f steps of its scale, not a 4-bit code", name, i, v, q)
			}
		}
	}
}

// TestAWQFoldIsExactInFloat: the engine's AWQ on the outlier block folds
// every input scale into the graph: into the norms (q/k/v share the
// RMSNorm's gamma, up reads the LayerNorm), or a Mul before o_proj (after a
// Transpose/Reshape) and down (after GELU), which are not channel-wise.
func TestAWQFoldIsExactInFloat(t *testing.T) {
	_, model, cal := withSamples(t, testmodels.OutlierBlock(1), 8, outlierShape, 1)
	orig, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	m, rounded, weights, inserted, ch, st := awqEngine(t, model, cal, 32)
	folded := 0
	for _, n := range ch.Notes {
		if strings.Contains(n, "folded into") {
			folded++
		}
	}
	if ch.Count != 4 || folded != 2 || len(inserted) != 2 {
		t.Fatalf("%d awq input tensors (%d folded, %d with a Mul), want 4 (2, 2)", ch.Count, folded, len(inserted))
	}
	if len(st.Changed) != 2 {
		t.Errorf("changed tensors %v, want the two norms' outputs", st.Changed)
	}
	checkAWQFold(t, orig, m, outlierShape, rounded, weights)
}

// TestAWQFoldIntoRoundedProducer: in a SwiGLU MLP, down's scales fold
// through silu(gate) * up into up's output columns after up was rounded:
// up's grid is divided with them and keeps its codes.
func TestAWQFoldIntoRoundedProducer(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	x := b.Input("input", 1, 16, 32)
	w := func(k, n int) *graph.Value {
		return b.Const("w", []int{k, n}, b.Normal(k*n, 0, 1/math.Sqrt(float64(k))))
	}
	wu, wd := w(32, 64), w(64, 32)
	// Channels of h = silu(gate) * up of very different sizes (up's column
	// c times f_c, down's row c divided by it): AWQ gives down a wide s.
	for c := range 64 {
		f := float32(math.Exp(3 * math.Sin(float64(c)*1.7)))
		for k := range 32 {
			wu.Const.Float32s()[k*64+c] *= f
			wd.Const.Float32s()[c*32+k] /= f
		}
	}
	gate, up := b.MatMul(x, w(32, 64)), b.MatMul(x, wu)
	b.Output(b.MatMul(b.Binary("Mul", b.SiLU(gate), up), wd))
	_, model, cal := withSamples(t, b.Finish(), 8, []int{1, 16, 32}, 2)
	orig, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	m, rounded, weights, _, ch, _ := awqEngine(t, model, cal, 16)
	if !strings.Contains(ch.Notes[len(ch.Notes)-1], `folded into the output channels of "MatMul_2"`) {
		t.Fatalf("notes %q: want down's scales folded into up (MatMul_2)", ch.Notes)
	}
	checkAWQFold(t, orig, m, []int{1, 16, 32}, rounded, weights)
	// Up's encoding pinned by the overrides: no fold may divide it, down
	// gets a Mul, and up's grid is the user's.
	m, rounded, weights, _, ch, _ = awqEngine(t, model, cal, 16, "MatMul_2")
	if !strings.Contains(ch.Notes[len(ch.Notes)-1], "Mul by 1/s inserted") {
		t.Fatalf("notes %q: want a Mul before down", ch.Notes)
	}
	checkAWQFold(t, orig, m, []int{1, 16, 32}, rounded, weights)
}

// TestAWQConvFold: AWQ on a Conv -> Relu -> Conv -> Relu -> Conv chain
// whose hidden channels have very different sizes: the second and third
// convolutions' scales fold through the Relus into the output channels (and
// biases) of the convolutions before them, after those were rounded; the
// first, reading the graph input, gets a Mul.
func TestAWQConvFold(t *testing.T) {
	b := testmodels.NewBuilder(4, 17)
	x := b.Input("input", 1, 3, 12, 12)
	c1 := b.Conv(x, 8, 3, testmodels.ConvOpts{Pad: 1})
	c2 := b.Conv(b.Relu(c1), 8, 3, testmodels.ConvOpts{Pad: 1})
	b.Output(b.Conv(b.Relu(c2), 4, 1, testmodels.ConvOpts{}))
	// Channel c of c1's and c2's outputs times f_c, the next weight's input
	// channel c divided by it: the same function, unequal channels.
	for _, p := range [][2]*graph.Node{{c1.Producer, c2.Producer}} {
		w1, w2 := p[0].Input(1).Const, p[1].Input(1).Const
		for c := range 8 {
			f := float32(math.Exp(2 * math.Sin(float64(c)*1.3)))
			for i := range 27 {
				w1.Float32s()[c*27+i] *= f
			}
			if bias := p[0].Input(2); bias != nil {
				bias.Const.Float32s()[c] *= f
			}
			for o := range 8 {
				for i := range 9 {
					w2.Float32s()[(o*8+c)*9+i] /= f
				}
			}
		}
	}
	shape := []int{1, 3, 12, 12}
	_, model, cal := withSamples(t, b.Finish(), 8, shape, 3)
	orig, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	m, rounded, weights, inserted, ch, st := awqEngine(t, model, cal, 0)
	folded := 0
	for _, n := range ch.Notes {
		if strings.Contains(n, "folded into the output channels of \"Conv") {
			folded++
		}
	}
	if folded < 1 || len(st.Changed) < 2 {
		t.Fatalf("notes %q, changed %v: want a fold through a Relu into a Conv", ch.Notes, st.Changed)
	}
	t.Logf("%d folds, %d Muls", folded, len(inserted))
	checkAWQFold(t, orig, m, shape, rounded, weights)
}

// TestAWQBeatsNearest: W4A16 (int4 blocks of 32, weights only) of the
// outlier block: AWQ's output SQNR beats nearest rounding's by at least
// 3 dB (its outlier channels' small weight rows are what AWQ's scales
// protect), also with the mse clipping search in place of AWQ's own, and
// two runs write the same bytes.
func TestAWQBeatsNearest(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.OutlierBlock(1), 16, outlierShape, 1)
	sqnr := map[string]float64{}
	var outs [][]byte
	for i, algo := range []string{"nearest", "awq", "awq", "awq+mse"} {
		out := filepath.Join(dir, algo+string(rune('a'+i))+".onnx")
		opt := Options{Model: model, Output: out, Calib: cal, WeightOnly: true,
			WeightType: graph.Int4, WeightBlockSize: 32, WeightRounding: algo, Rounding: wround.DefaultOptions()}
		if algo == "awq+mse" {
			opt.WeightRounding, opt.WeightRange = "awq", "mse"
		}
		rep, err := Convert(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		sqnr[algo] = rep.Measured.Outputs[0].SQNR
		if algo != "nearest" {
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, b)
			for _, tr := range rep.Tensors {
				if tr.Kind == "weight" && (tr.Rounding == nil || tr.Rounding.MSENearest == nil || *tr.Rounding.MSEAfter > *tr.Rounding.MSENearest) {
					t.Errorf("weight %q: rounding report %+v, want awq no worse than nearest", tr.Name, tr.Rounding)
				}
			}
		}
	}
	t.Logf("output SQNR: nearest %.2f dB, awq %.2f dB, awq + mse range %.2f dB", sqnr["nearest"], sqnr["awq"], sqnr["awq+mse"])
	for _, a := range []string{"awq", "awq+mse"} {
		if sqnr[a] < sqnr["nearest"]+3 {
			t.Errorf("%s %.2f dB against nearest %.2f dB, want >= 3 dB more", a, sqnr[a], sqnr["nearest"])
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two awq conversions differ")
	}
}

// TestAWQStaticActivations: with quantized activations, the output of a Mul
// that AWQ inserted is calibrated and quantized like the tensor it replaced:
// every MatMul of the written model reads a DequantizeLinear, and the model
// stays close to float.
func TestAWQStaticActivations(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.OutlierBlock(1), 8, outlierShape, 1)
	out := filepath.Join(dir, "awq.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ActType: graph.Uint16,
		WeightRounding: "awq", Rounding: wround.DefaultOptions()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	mm := 0
	for _, n := range q.Graph.Nodes {
		if n.OpType != "MatMul" {
			continue
		}
		if dq := n.Input(1).Producer; dq == nil || dq.OpType != "DequantizeLinear" || dq.Input(0).Const == nil {
			continue // attention's activation x activation products
		}
		mm++
		if p := n.Input(0).Producer; p == nil || p.OpType != "DequantizeLinear" {
			t.Errorf("%s reads %q, not a DequantizeLinear", n, n.Input(0).Name)
		}
	}
	if mm != 6 {
		t.Fatalf("%d MatMuls with quantized weights, want 6", mm)
	}
	if s := rep.Measured.Outputs[0].SQNR; s < 30 {
		t.Errorf("int8 weights, uint16 activations with awq: output SQNR %.2f dB, want >= 30", s)
	}
}
