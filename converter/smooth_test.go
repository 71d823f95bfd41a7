package converter

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

var outlierShape = []int{1, 32, 64}

// maxRelDiff is max |a-b| / max |a|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = math.Max(m, math.Abs(float64(a[i])))
	}
	return d / m
}

// TestSmoothQuantIsExactInFloat: on the outlier block, SmoothQuant folds its
// scales into both norms (the decomposed RMSNorm's gamma, LayerNormalization's
// scale and bias), inserts a Mul before o_proj and down_proj, takes the
// planted outliers out of the projections' inputs, and the outputs move by
// less than 1e-5 relative.
func TestSmoothQuantIsExactInFloat(t *testing.T) {
	m := testmodels.OutlierBlock(1)
	_, model, cal := withSamples(t, m, 8, outlierShape, 1)
	orig, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	st := passes.NewState()
	ch, _, err := smoothQuant(context.Background(), sm, Options{Calib: cal, SmoothQuant: 0.5}, st)
	if err != nil {
		t.Fatal(err)
	}
	folded, inserted := 0, 0
	for _, n := range ch.Notes {
		switch {
		case strings.Contains(n, "folded into the constant of") || strings.Contains(n, "folded into the scale of \"LayerNormalization"):
			folded++
		case strings.Contains(n, "Mul by 1/s inserted"):
			inserted++
		}
	}
	t.Logf("%s", strings.Join(ch.Notes, "\n"))
	if ch.Count != 4 || folded != 2 || inserted != 2 {
		t.Fatalf("%d tensors smoothed (%d folded, %d with a Mul), want 4 (2, 2): %v", ch.Count, folded, inserted, ch.Notes)
	}
	if len(st.Changed) != 2 {
		t.Errorf("changed tensors %v, want the two norms' outputs", st.Changed)
	}
	// The q/k/v input no longer has outlier channels: its channel maxima
	// (measured again on the smoothed model) spread far less.
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 4; i++ {
		x := graph.NewTensor(graph.Float, outlierShape)
		for j, d := 0, x.Float32s(); j < len(d); j++ {
			d[j] = float32(r.NormFloat64())
		}
		a, b := runOnce(t, orig, x), runOnce(t, sm, x)
		if d := maxRelDiff(a, b); d > 1e-5 {
			t.Errorf("sample %d: output moved by %.3g relative (want < 1e-5)", i, d)
		} else if i == 0 {
			t.Logf("output change %.3g relative", d)
		}
	}
	var qkvIn string // what the first MatMul (q_proj) reads
	for _, n := range orig.Graph.Nodes {
		if n.OpType == "MatMul" {
			qkvIn = n.Input(0).Name
			break
		}
	}
	ms, _, err := collectSmoothStats(context.Background(), sm, Options{Calib: cal}, []string{qkvIn})
	if err != nil {
		t.Fatal(err)
	}
	mo, _, err := collectSmoothStats(context.Background(), orig, Options{Calib: cal}, []string{qkvIn})
	if err != nil {
		t.Fatal(err)
	}
	before, after := outlierRatio(mo[qkvIn].absMax(), nil), outlierRatio(ms[qkvIn].absMax(), nil)
	t.Logf("q/k/v input: channel max over median %.1f -> %.1f", before, after)
	if before < 50 || after > 10 {
		t.Errorf("q/k/v input: channel max over median %.1f -> %.1f, want the planted 100x outliers gone", before, after)
	}
}

// TestSmoothQuantSQNR: W8A8 (uint8 per-tensor activations, int8 per-channel
// weights) of the outlier block gains at least 10 dB of output SQNR with
// SmoothQuant at alpha 0.5, measured on held-out samples.
func TestSmoothQuantSQNR(t *testing.T) {
	m := testmodels.OutlierBlock(1)
	dir, model, cal := withSamples(t, m, 16, outlierShape, 1)
	eval := filepath.Join(dir, "eval")
	mustMkdir(t, eval)
	randomSamples(t, eval, 8, outlierShape, 2)
	sqnr := map[float64]float64{}
	for _, alpha := range []float64{0, 0.5} {
		out := filepath.Join(dir, "q.onnx")
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Eval: eval, SmoothQuant: alpha})
		if err != nil {
			t.Fatal(err)
		}
		sqnr[alpha] = rep.Measured.Outputs[0].SQNR
	}
	t.Logf("output SQNR: plain W8A8 %.2f dB, SmoothQuant 0.5 %.2f dB", sqnr[0], sqnr[0.5])
	// Deterministic: the same options give the same bytes.
	var files [2][]byte
	for i := range files {
		out := filepath.Join(dir, fmt.Sprintf("d%d.onnx", i))
		if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, SmoothQuant: 0.5, NoMeasure: true}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("two SmoothQuant conversions differ")
	}
	if sqnr[0.5] < sqnr[0]+10 {
		t.Errorf("SmoothQuant 0.5 gives %.2f dB against %.2f dB without, want >= 10 dB more", sqnr[0.5], sqnr[0])
	}
}

// TestSmoothQuantRules: the overrides set alpha per node and per op type;
// readers of one tensor with different alphas, alphas outside [0, 1], and
// smoothing without calibration data are errors.
func TestSmoothQuantRules(t *testing.T) {
	m := testmodels.OutlierBlock(1)
	_, model, cal := withSamples(t, m, 4, outlierShape, 1)
	alpha := func(v float64) *float64 { return &v }
	load := func() *graph.Model {
		g, err := graph.Load(model)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// Only the MLP's up and down projections (MatMul_7, MatMul_8, by glob).
	f := &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"MatMul_[78]": {SmoothQuant: alpha(0.6)}}}
	ch, _, err := smoothQuant(context.Background(), load(), Options{Calib: cal, Overrides: f}, passes.NewState())
	if err != nil {
		t.Fatal(err)
	}
	if ch == nil || ch.Count != 2 || !strings.Contains(strings.Join(ch.Notes, "\n"), `alpha 0.6, from overrides nodes["MatMul_[78]"]`) {
		t.Errorf("per-node rule: %+v", ch)
	}
	// A global alpha switched off for q_proj (MatMul_1): k and v share s
	// through an inserted Mul, since the norm also feeds q_proj unsmoothed.
	f = &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"MatMul_1": {SmoothQuant: alpha(0)}}}
	g := load()
	ch, _, err = smoothQuant(context.Background(), g, Options{Calib: cal, SmoothQuant: 0.5, Overrides: f}, passes.NewState())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ch.Notes[0], "Mul by 1/s inserted before 2 layer(s)") {
		t.Errorf("q/k/v with k_proj off: %s", ch.Notes[0])
	}
	f = &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"MatMul_1": {SmoothQuant: alpha(0.8)}}}
	if _, _, err := smoothQuant(context.Background(), load(), Options{Calib: cal, SmoothQuant: 0.5, Overrides: f}, passes.NewState()); err == nil || !strings.Contains(err.Error(), "same alpha") {
		t.Errorf("different alphas on one tensor: %v", err)
	}
	if _, _, err := smoothQuant(context.Background(), load(), Options{SmoothQuant: 0.5}, passes.NewState()); err == nil || !strings.Contains(err.Error(), "--calib") {
		t.Errorf("no calibration data: %v", err)
	}
	if _, _, err := smoothQuant(context.Background(), load(), Options{Calib: cal, SmoothQuant: 1.5}, passes.NewState()); err == nil {
		t.Error("alpha 1.5 accepted")
	}
	if _, err := overrides.Parse([]byte(`{"version": 1, "op_types": {"MatMul": {"smooth_quant": -0.1}}}`)); err == nil || !strings.Contains(err.Error(), `op_types["MatMul"].smooth_quant`) {
		t.Errorf("negative alpha in a rule: %v", err)
	}
}

// TestSmoothQuantDefaultDecides: the default's noise estimate sees a clear
// gain for a tensor with an activation outlier channel, and next to none
// where neither side has outliers (then the rescale is close to uniform and
// changes little).
func TestSmoothQuantDefaultDecides(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	x := b.Input("x", 1, 16, 8)
	w := b.Normal(8*4, 0, 0.1)
	y := b.MatMul(x, b.Const("w", []int{8, 4}, w))
	b.Output(y)
	m := b.Finish()
	mm := m.Graph.Nodes[len(m.Graph.Nodes)-1]
	flat := &smoothStats{lo: make([]float32, 8), hi: make([]float32, 8), sumSq: make([]float64, 8), rows: 100}
	outl := &smoothStats{lo: make([]float32, 8), hi: make([]float32, 8), sumSq: make([]float64, 8), rows: 100}
	for j := range 8 {
		flat.lo[j], flat.hi[j], flat.sumSq[j] = -1, 1, 100.0/3
		outl.lo[j], outl.hi[j], outl.sumSq[j] = -1, 1, 100.0/3
	}
	outl.lo[5], outl.hi[5], outl.sumSq[5] = -100, 100, 100*1e4/3 // an activation outlier channel
	wMax, err := passes.InputChannelMax(m.Graph, x, []*graph.Node{mm})
	if err != nil {
		t.Fatal(err)
	}
	best := func(c *smoothStats) (float64, float64) {
		none := w8a8Error(c, []*graph.Node{mm}, nil)
		lowest := none
		for _, a := range autoAlphas {
			s, err := passes.SmoothScales(c.absMax(), wMax, a)
			if err != nil {
				t.Fatal(err)
			}
			lowest = min(lowest, w8a8Error(c, []*graph.Node{mm}, s))
		}
		return none, lowest
	}
	if none, lowest := best(flat); lowest < 0.5*none {
		t.Errorf("no outliers: smoothing estimated %.3g against %.3g unsmoothed; want next to no gain", lowest, none)
	}
	if none, lowest := best(outl); !(lowest < none/4) {
		t.Errorf("activation outlier channel: smoothing estimated %.3g against %.3g unsmoothed; want a clear gain", lowest, none)
	}
}
