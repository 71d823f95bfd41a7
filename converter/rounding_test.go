package converter

import (
	"bytes"
	"context"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
	"github.com/onnxq/onnxq/wround"
)

// TestRoundingRowsReproduceOutputs: the rows the engine cuts from a layer's
// input (im2col patches for convolutions with padding, strides, dilations
// and groups; last-axis rows for MatMul) times the layer's weight rows give
// the layer's own outputs, so the statistics are those of the real products.
func TestRoundingRowsReproduceOutputs(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	x := b.Input("input", 2, 4, 9, 11)
	c1 := b.Conv(x, 6, 3, testmodels.ConvOpts{Stride: 2, Pad: 1, Group: 2, Dilation: 2, NoBias: true})
	c2 := b.Conv(c1, 6, 3, testmodels.ConvOpts{Pad: 1, Group: 6, NoBias: true}) // depthwise
	r := b.Reshape(c2, 2, 6, 20)
	y := b.MatMul(r, b.Const("mm_w", []int{20, 5}, b.Normal(100, 0, 1)))
	b.Output(y)
	m := b.Finish()
	taps := map[string]*graph.Tensor{}
	var nodes []*graph.Node
	want := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" || n.OpType == "MatMul" {
			nodes = append(nodes, n)
			want[n.Input(0).Name], want[n.Output().Name] = true, true
		}
	}
	s, err := kernels.NewSession(m, kernels.Options{TapOnly: want, Tap: func(name string, t *graph.Tensor) { taps[name] = t.Clone() }})
	if err != nil {
		t.Fatal(err)
	}
	in := graph.NewTensor(graph.Float, []int{2, 4, 9, 11})
	for i, d := 0, in.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.37))
	}
	if _, err := s.Run(map[string]*graph.Tensor{"input": in}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		w := n.Input(1).Const
		enc, err := passes.WeightEncoding(w, 0, 0, graph.Int8, true)
		if n.OpType == "MatMul" {
			enc, err = passes.WeightEncoding(w, 1, 0, graph.Int8, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		subs, why, err := layersOf(n, w, enc, -128, 127, true)
		if err != nil || why != "" {
			t.Fatalf("%s: %v %s", n, err, why)
		}
		out := taps[n.Output().Name].Float32s()
		// Output element order: conv [B, O, oh, ow] / matmul [..., N]; rows
		// come batch-major, then position.
		oshape := taps[n.Output().Name].Shape
		checked := 0
		for gi, sub := range subs {
			l, src := sub.layer, sub.src
			row := make([]float32, src.k)
			idx := 0
			if err := src.rows(taps[n.Input(0).Name], row, func(x []float32) {
				for r := range l.N {
					var dot float64
					for k, v := range x {
						dot += float64(v) * float64(l.W[r*l.K+k])
					}
					var got float32
					if n.OpType == "Conv" {
						pos := oshape[2] * oshape[3]
						bi, p := idx/pos, idx%pos
						got = out[(bi*oshape[1]+gi*l.N+r)*pos+p]
					} else {
						got = out[idx*l.N+r]
					}
					if math.Abs(dot-float64(got)) > 1e-4*(1+math.Abs(dot)) {
						t.Fatalf("%s group %d row %d output %d: rows give %v, the op %v", n, gi, idx, r, dot, got)
					}
					checked++
				}
				idx++
			}); err != nil {
				t.Fatal(err)
			}
		}
		if checked != len(out) {
			t.Fatalf("%s: checked %d of %d outputs", n, checked, len(out))
		}
	}
}

// roundingModel is a small MLP plus a conv stem, with calibration samples.
func roundingModel(t *testing.T) (model, cal string) {
	b := testmodels.NewBuilder(7, 17)
	x := b.Input("input", 1, 16, 48)
	h := b.Relu(b.Linear(x, 64, 1.2))
	y := b.Linear(h, 24, 1)
	b.Output(y)
	_, model, cal = withSamples(t, b.Finish(), 8, []int{1, 16, 48}, 5)
	return model, cal
}

func TestRoundingGPTQDeterministicAndBetter(t *testing.T) {
	model, cal := roundingModel(t)
	dir := t.TempDir()
	var outs [][]byte
	for i := range 2 {
		out := filepath.Join(dir, []string{"a.onnx", "b.onnx"}[i])
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, WeightOnly: true,
			WeightType: graph.Int4, WeightBlockSize: 16, NoMeasure: true, WeightRounding: "gptq", WeightRange: "minmax", Rounding: wround.DefaultOptions()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
		layers := 0
		for _, tr := range rep.Tensors {
			if tr.Kind != "weight" {
				continue
			}
			r := tr.Rounding
			if r == nil || r.Algorithm != "gptq" || r.MSENearest == nil {
				t.Fatalf("weight %q: rounding report %+v", tr.Name, r)
			}
			if !(*r.MSEAfter < 0.9**r.MSENearest) {
				t.Errorf("weight %q: output MSE %g after GPTQ, %g with nearest rounding", tr.Name, *r.MSEAfter, *r.MSENearest)
			}
			layers++
		}
		if layers != 2 {
			t.Fatalf("%d weights reported, want 2", layers)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("two GPTQ conversions differ")
	}
	// A statistics budget too small for two layers runs one calibration pass
	// per layer, and changes nothing else.
	defer func(b int64) { statsBudget = b }(statsBudget)
	statsBudget = 1
	one := filepath.Join(dir, "one.onnx")
	if _, err := Convert(context.Background(), Options{Model: model, Output: one, Calib: cal, WeightOnly: true,
		WeightType: graph.Int4, WeightBlockSize: 16, NoMeasure: true, WeightRounding: "gptq", WeightRange: "minmax", Rounding: wround.DefaultOptions()}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(one); err != nil || !bytes.Equal(b, outs[0]) {
		t.Fatalf("one layer per pass gives another model (%v)", err)
	}
	// The written model holds exactly the engine's codes: its weights,
	// dequantized, equal the values the engine wrote back, which are on the
	// grid (a round trip through QuantizeLinear keeps them).
	q, err := graph.Load(filepath.Join(dir, "a.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dq := 0
	for _, n := range q.Graph.Nodes {
		if n.OpType == "DequantizeLinear" && n.Input(0).Const != nil && n.Input(0).Const.DType == graph.Int4 {
			dq++
		}
	}
	if dq != 2 {
		t.Fatalf("%d int4 weight DequantizeLinear nodes, want 2", dq)
	}
}

func TestRoundingNeedsData(t *testing.T) {
	model, cal := roundingModel(t)
	out := filepath.Join(t.TempDir(), "m.onnx")
	_, err := Convert(context.Background(), Options{Model: model, Output: out, WeightOnly: true, WeightType: graph.Int4, NoMeasure: true, WeightRounding: "gptq"})
	if err == nil || !strings.Contains(err.Error(), "needs calibration data") {
		t.Fatalf("gptq without data: %v", err)
	}
	// HQQ needs none; with the weight range search on data it also runs.
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, WeightOnly: true, WeightType: graph.Int4, NoMeasure: true, WeightRounding: "hqq"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tensors {
		if tr.Kind == "weight" && (tr.Rounding == nil || tr.Rounding.Algorithm != "hqq" || tr.Rounding.MSENearest != nil) {
			t.Fatalf("weight %q: %+v", tr.Name, tr.Rounding)
		}
	}
	rep, err = Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, WeightOnly: true, WeightType: graph.Int4, NoMeasure: true, WeightRange: "mse"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tensors {
		if tr.Kind == "weight" {
			if r := tr.Rounding; r == nil || r.Algorithm != "mse" || !(*r.MSEAfter < *r.MSENearest) {
				t.Fatalf("weight %q: range search %+v", tr.Name, r)
			}
		}
	}
}

func TestRoundingPerRule(t *testing.T) {
	model, cal := roundingModel(t)
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, n := range m.Graph.Nodes {
		if n.OpType == "MatMul" {
			first = n.Name
			break
		}
	}
	f, err := overrides.Parse([]byte(`{"version": 1, "nodes": {"` + first + `": {"weight_rounding": "gptq"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(t.TempDir(), "m.onnx"), Calib: cal, WeightOnly: true, WeightType: graph.Int4, NoMeasure: true, Overrides: f})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tr := range rep.Tensors {
		if tr.Kind == "weight" {
			if tr.Rounding != nil {
				got[tr.Rounding.Algorithm]++
			} else {
				got["none"]++
			}
		}
	}
	if got["gptq+mse"] != 1 || got["none"] != 1 {
		t.Fatalf("per-node rule: %v, want gptq (on the mse range, its default) on one weight and nearest (no report) on the other", got)
	}
	_, err = overrides.Parse([]byte(`{"version": 1, "op_types": {"MatMul": {"weight_rounding": "gptx"}}}`))
	if err == nil || !strings.Contains(err.Error(), `op_types["MatMul"].weight_rounding`) && !strings.Contains(err.Error(), "op_types.MatMul.weight_rounding") {
		t.Fatalf("unknown algorithm: %v", err)
	}
}

// TestRoundingConvSequential: GPTQ on a conv block (pointwise, depthwise,
// pointwise, then a Gemm; int4 per-channel weights, uint16 activations) with inputs from
// the already rounded prefix lowers every layer's output error, and the
// rounded model is closer to float than nearest rounding's.
func TestRoundingConvSequential(t *testing.T) {
	dir, model, cal := withSamples(t, testmodels.MobileNetV2Block(1), 8, []int{1, 8, 16, 16}, 3)
	sqnr := map[string]float64{}
	for _, algo := range []string{"nearest", "gptq"} {
		rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, algo+".onnx"), Calib: cal,
			ActType: graph.Uint16, WeightType: graph.Int4, WeightRounding: algo, Sequential: true, Rounding: wround.DefaultOptions()})
		if err != nil {
			t.Fatal(err)
		}
		sqnr[algo] = rep.Measured.Outputs[0].SQNR
		if algo != "gptq" {
			continue
		}
		convs := 0
		for _, tr := range rep.Tensors {
			if r := tr.Rounding; r != nil {
				convs++
				if !(*r.MSEAfter < *r.MSENearest) {
					t.Errorf("weight %q: output MSE %g after GPTQ, %g nearest", tr.Name, *r.MSEAfter, *r.MSENearest)
				}
			}
		}
		if convs != 4 {
			t.Fatalf("%d weights rounded, want the block's 3 convolutions and its Gemm", convs)
		}
	}
	t.Logf("output SQNR: nearest %.2f dB, GPTQ %.2f dB", sqnr["nearest"], sqnr["gptq"])
	// Sequential rounding changes what later layers see while rounding, not
	// the model activations are calibrated on: the float weights are back.
	ranges := map[bool]map[string][2]float32{}
	mse := map[bool][]float64{}
	for _, seq := range []bool{false, true} {
		rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, "seq.onnx"), Calib: cal, NoMeasure: true,
			ActType: graph.Uint16, WeightType: graph.Int4, WeightRounding: "gptq", Sequential: seq})
		if err != nil {
			t.Fatal(err)
		}
		ranges[seq] = map[string][2]float32{}
		for _, tr := range rep.Tensors {
			if tr.Range != nil {
				ranges[seq][tr.Name] = *tr.Range
			}
			if tr.Rounding != nil {
				mse[seq] = append(mse[seq], *tr.Rounding.MSENearest)
			}
		}
	}
	if len(ranges[true]) == 0 || !maps.Equal(ranges[false], ranges[true]) {
		t.Errorf("activation ranges differ with --sequential: %v vs %v", ranges[false], ranges[true])
	}
	same := 0
	for i := range mse[false] {
		if mse[false][i] == mse[true][i] {
			same++
		}
	}
	if same != 1 || len(mse[true]) != 4 {
		t.Errorf("nearest-rounding output MSE per weight %v, sequential %v: want the first layer's alike and the 3 later ones on the rounded prefix's inputs", mse[false], mse[true])
	}
	if !(sqnr["gptq"] > sqnr["nearest"]+1) {
		t.Errorf("GPTQ output SQNR %.2f dB is not 1 dB above nearest's %.2f", sqnr["gptq"], sqnr["nearest"])
	}
}

// TestRoundingSharedInputOneLayer: weights reading one input run as one
// layer (what AWQ's shared input scales need) and get their own rows back:
// GPTQ, whose rows are independent, gives the same codes and grids either way.
func TestRoundingSharedInputOneLayer(t *testing.T) {
	b := testmodels.NewBuilder(5, 17)
	x := b.Input("input", 1, 8, 24)
	b.Output(b.Add(b.Linear(x, 16, 1), b.Linear(x, 16, 1)))
	m := b.Finish()
	build := func(rows int) []*roundTarget {
		var ts []*roundTarget
		stats := newRowStats(24, wround.Needs{Hessian: true}, 0, "")
		for i := range rows {
			row := make([]float32, 24)
			for k := range row {
				row[k] = float32(math.Sin(float64(i*24+k)*0.7) + math.Cos(float64(i)*0.3)*float64(k%5))
			}
			stats.add(row)
		}
		for _, n := range m.Graph.Nodes {
			if n.OpType != "MatMul" {
				continue
			}
			w := n.Input(1).Const
			enc, err := passes.WeightEncoding(w, 0, 8, graph.Int4, false)
			if err != nil {
				t.Fatal(err)
			}
			subs, why, err := layersOf(n, w, enc, -8, 7, false)
			if err != nil || why != "" {
				t.Fatal(err, why)
			}
			subs[0].src.stats = stats
			ts = append(ts, &roundTarget{weight: n.Input(1).Name, node: n, algo: "gptq", enc: enc, subs: subs})
		}
		if len(ts) != 2 || ts[0].subs[0].src.key() != ts[1].subs[0].src.key() {
			t.Fatalf("%d targets, want 2 reading one input", len(ts))
		}
		return ts
	}
	opt := Options{Rounding: roundingDefaults(wround.Options{})}
	apart, together := map[string][]float32{}, map[string][]float32{}
	ta, tt := build(500), build(500)
	for _, tg := range ta {
		if err := runTarget(tg, opt, apart, &Report{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := runShared(tt, opt, together, &Report{}, nil); err != nil {
		t.Fatal(err)
	}
	for i, tg := range ta {
		a, b := apart[tg.weight], together[tg.weight]
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("weight %q [%d]: %v apart, %v as one layer", tg.weight, j, a[j], b[j])
			}
		}
		for j := range tg.enc.Scale {
			if tg.enc.Scale[j] != tt[i].enc.Scale[j] || tg.enc.ZeroPoint[j] != tt[i].enc.ZeroPoint[j] {
				t.Fatalf("weight %q: group %d grid differs", tg.weight, j)
			}
		}
	}
	// A layer the data never reached keeps nearest rounding, with a warning
	// (GPTQ would see only dead inputs and zero it).
	rep := &Report{}
	none := map[string][]float32{}
	tn := build(0)
	if err := runShared(tn, opt, none, rep, nil); err != nil {
		t.Fatal(err)
	}
	for _, tg := range tn {
		l := tg.subs[0].layer
		want := l.Dequantized(l.RTN())
		for r := range l.N {
			for k := range l.K {
				if got := none[tg.weight][tg.subs[0].index(r, k)]; got != want[r*l.K+k] {
					t.Fatalf("weight %q (%d, %d): %v, nearest %v", tg.weight, r, k, got, want[r*l.K+k])
				}
			}
		}
	}
	if len(rep.Warnings) != 2 || !strings.Contains(rep.Warnings[0], "never computed on the calibration data") {
		t.Fatalf("warnings %q", rep.Warnings)
	}
}

// TestRoundingBiasCorrectionSeesCodes: with --bias-correction, each conv's
// bias is corrected for the error of the codes the engine chose, -(Wq - W)
// E[x], with Wq the weights the written model holds, not those of nearest
// rounding.
func TestRoundingBiasCorrectionSeesCodes(t *testing.T) {
	b := testmodels.NewBuilder(11, 17)
	x := b.Input("input", 1, 3, 12, 12)
	y := b.Conv(b.Relu(b.Conv(x, 8, 3, testmodels.ConvOpts{Pad: 1})), 4, 3, testmodels.ConvOpts{Stride: 2})
	b.Output(y)
	m := b.Finish()
	dir, model, cal := withSamples(t, m, 6, []int{1, 3, 12, 12}, 2)
	// E[x] per input channel of every conv, on the float model.
	means := map[string][]float64{}
	var convs []*graph.Node
	want := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" {
			convs = append(convs, n)
			want[n.Input(0).Name] = true
		}
	}
	s, err := kernels.NewSession(m, kernels.Options{TapOnly: want, Tap: func(name string, v *graph.Tensor) {
		c, hw := v.Shape[1], v.Shape[2]*v.Shape[3]
		if means[name] == nil {
			means[name] = make([]float64, c)
		}
		for ch := range c {
			for _, f := range v.Float32s()[ch*hw : (ch+1)*hw] {
				means[name][ch] += float64(f) / float64(hw*6)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(cal)
	if err != nil || len(entries) != 6 {
		t.Fatalf("%d samples: %v", len(entries), err)
	}
	src, err := dataset.Open(cal, dataset.InputsOf(m), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		smp, err := src.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(smp); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "bc.onnx")
	if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ActType: graph.Uint16,
		WeightType: graph.Int4, WeightRounding: "gptq", BiasCorrection: true, NoMeasure: true}); err != nil {
		t.Fatal(err)
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, n := range q.Graph.Nodes {
		if n.OpType != "Conv" {
			continue
		}
		var orig *graph.Node
		for _, c := range convs {
			if c.Name == n.Name {
				orig = c
			}
		}
		wq, bq := dequantConst(t, n.Input(1)), dequantConst(t, n.Input(2))
		w, bias := orig.Input(1).Const.Float32s(), orig.Input(2).Const.Float32s()
		mean := means[orig.Input(0).Name]
		per := len(w) / len(bias)
		cg := len(mean)
		for o := range bias {
			var d float64
			for k := range per {
				d += (float64(wq[o*per+k]) - float64(w[o*per+k])) * mean[k/(per/cg)]
			}
			exp := float64(bias[o]) - d
			if math.Abs(float64(bq[o])-exp) > 1e-3*(1+math.Abs(exp)) {
				t.Fatalf("%s channel %d: corrected bias %v, want %v (from the written codes)", n.Name, o, bq[o], exp)
			}
		}
		checked++
	}
	if checked != 2 {
		t.Fatalf("checked %d convs, want 2", checked)
	}
}

// dequantConst is the float value of a DequantizeLinear of constants.
func dequantConst(t *testing.T, v *graph.Value) []float32 {
	t.Helper()
	dq := v.Producer
	if dq == nil || dq.OpType != "DequantizeLinear" {
		t.Fatalf("%q is not a DequantizeLinear output", v.Name)
	}
	q, err := dq.Input(0).Const.AsFloat32()
	if err != nil {
		t.Fatal(err)
	}
	scale := dq.Input(1).Const.Float32s()
	var zero []float32
	if z := dq.Input(2); z != nil {
		if zero, err = z.Const.AsFloat32(); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]float32, len(q))
	inner := len(q) / len(scale)
	for i := range q {
		c := i / inner
		zp := float32(0)
		if zero != nil {
			zp = zero[c]
		}
		out[i] = (q[i] - zp) * scale[c]
	}
	return out
}

// TestRoundingFloatTargets: with --sequential, a layer that reconstructs the
// float model's output (the default) compensates the error of the layer
// before it: the two-layer model's output is closer to float than with its
// own output on the rounded prefix's as the target (--quantized-targets),
// and the first layer (whose inputs are the float model's either way) is
// rounded alike.
func TestRoundingFloatTargets(t *testing.T) {
	model, cal := roundingModel(t)
	dir := t.TempDir()
	sqnr := map[string]float64{}
	mse := map[string][]float64{}
	for _, v := range []struct {
		name      string
		algo      string
		seq, qtgt bool
	}{{"nearest", "nearest", false, false}, {"sequential", "gptq", true, true}, {"float", "gptq", true, false}, {"adaround", "adaround", true, true}, {"adaround-float", "adaround", true, false}} {
		o := wround.DefaultOptions()
		o.AdaRoundIters = 500
		o.AdaRoundLR = 1e-2
		rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, v.name+".onnx"), Calib: cal,
			ActType: graph.Uint16, WeightType: graph.Int4, WeightRounding: v.algo, Sequential: v.seq, QuantizedTargets: v.qtgt, Rounding: o})
		if err != nil {
			t.Fatal(err)
		}
		sqnr[v.name] = rep.Measured.Outputs[0].SQNR
		for _, tr := range rep.Tensors {
			if tr.Rounding != nil {
				mse[v.name] = append(mse[v.name], *tr.Rounding.MSEAfter)
			}
		}
	}
	t.Logf("output SQNR %v, layer MSE %v", sqnr, mse)
	if mse["sequential"][0] != mse["float"][0] {
		t.Errorf("first layer's output MSE %g with float targets, %g without: its inputs are the float model's", mse["float"][0], mse["sequential"][0])
	}
	if !(sqnr["float"] > sqnr["sequential"]+1 && sqnr["sequential"] > sqnr["nearest"]) {
		t.Errorf("GPTQ output SQNR %.2f dB with float targets, %.2f without, nearest %.2f: want float targets 1 dB ahead", sqnr["float"], sqnr["sequential"], sqnr["nearest"])
	}
	if !(sqnr["adaround-float"] > sqnr["adaround"]+1) {
		t.Errorf("AdaRound output SQNR %.2f dB with float targets, %.2f without", sqnr["adaround-float"], sqnr["adaround"])
	}
	if _, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, "x.onnx"), Calib: cal,
		WeightType: graph.Int4, WeightRounding: "gptq", QuantizedTargets: true}); err == nil || !strings.Contains(err.Error(), "--sequential") {
		t.Errorf("quantized targets without sequential: %v", err)
	}
}
