//go:build ort

package converter

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
)

// TestEveryFamilyConvertsForORT converts each zoo model and architecture
// family with each observer (and with min/max for ONNX Runtime's CPU
// provider, --runtime ort, and for the model in float16), as a user would a
// model onnxq has not seen: 16
// of its samples to calibrate, then on 24 others the written QDQ model must
// load and run in ONNX Runtime with all its optimizations, leave no node in
// float without a reason in the report, and keep what onnxq's executor
// measures of it: each output's signal-to-quantization-noise ratio against
// the float model, in ONNX Runtime, within familyDB of the same ratio in
// onnxq (the executor that convert's own measurement, compare, sensitivity
// and tune run on). How good that ratio is belongs to the model (the zoo's
// SiLU networks amplify any rounding noise: under 8 dB even with uint16
// activations) and is logged, with a classifier's top-1 agreement.
// MobileNetV2's ReLU6 outputs, calibrated by a histogram to a range just
// past 6, made a model ONNX Runtime refused to load (see withinOutputBounds).
func TestEveryFamilyConvertsForORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
		for _, v := range []struct {
			obs  string
			rt   Runtime
			half bool
		}{{"minmax", RuntimeGeneric, false}, {"percentile", RuntimeGeneric, false}, {"entropy", RuntimeGeneric, false}, {"mse", RuntimeGeneric, false}, {"minmax", RuntimeORT, false}, {"minmax", RuntimeGeneric, true}} {
			variant := v.obs
			if v.rt == RuntimeORT {
				variant += "-runtime-ort"
			}
			if v.half {
				variant += "-float16"
			}
			t.Run(name+"/"+variant, func(t *testing.T) {
				m, err := testmodels.Build(name, 1)
				if err != nil {
					t.Fatal(err)
				}
				samples, err := testmodels.Samples(name, m, 16, 1)
				if err != nil {
					t.Fatal(err)
				}
				eval, err := testmodels.Samples(name, m, 24, 2)
				if err != nil {
					t.Fatal(err)
				}
				// A float16 model (float32 inputs and outputs, as ToHalf
				// keeps them) is its own float reference.
				if v.half {
					if err := testmodels.ToHalf(m, graph.Float16, true); err != nil {
						t.Fatal(err)
					}
				}
				dir := t.TempDir()
				model, out, cal := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m.qdq.onnx"), filepath.Join(dir, "calib")
				if err := graph.Save(m, model); err != nil {
					t.Fatal(err)
				}
				if err := testmodels.WriteSamples(cal, samples); err != nil {
					t.Fatal(err)
				}
				rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, NoMeasure: true, Observer: calib.Config{Kind: v.obs}, Runtime: v.rt})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range rep.FloatNodes {
					if f.Reason == "" {
						t.Errorf("node %s (%s) left in float with no reason given", f.Node, f.OpType)
					}
				}
				q, err := graph.Load(out)
				if err != nil {
					t.Fatal(err)
				}
				if n := quantizedCompute(q); n == 0 {
					t.Fatal("no Conv, MatMul, Gemm or recurrent op reads a DequantizeLinear output")
				}
				ref, got := ortOutputs(t, model, eval), ortOutputs(t, out, eval)
				ours := onnxqOutputs(t, q, eval)
				for _, o := range m.Graph.Outputs {
					theirs, mine := sqnrDB(ref[o.Name], got[o.Name]), sqnrDB(ref[o.Name], ours[o.Name])
					msg := fmt.Sprintf("output %q against float: SQNR %.1f dB in ONNX Runtime, %.1f dB in onnxq (the two QDQ runs %.1f dB apart) over %d samples", o.Name, theirs, mine, sqnrDB(ours[o.Name], got[o.Name]), len(eval))
					if shape, ok := o.StaticShape(); ok && o.Name == "logits" {
						msg += fmt.Sprintf(", top-1 agreement %.0f%%%s", 100*sameTop1(ref[o.Name], got[o.Name], shape), top1Scope(shape))
					}
					t.Logf("%s; %d float nodes: %s", msg, len(rep.FloatNodes), floatOpTypes(rep.FloatNodes))
					bound := familyDB
					if v.half {
						bound = familyHalfDB
					}
					if !(math.Abs(theirs-mine) <= bound) {
						t.Errorf("output %q: SQNR %.2f dB in ONNX Runtime, %.2f dB in onnxq: more than %.0f dB apart", o.Name, theirs, mine, bound)
					}
				}
			})
		}
	}
}

// onnxqOutputs is ortOutputs in onnxq's executor.
func onnxqOutputs(t *testing.T, m *graph.Model, samples []map[string]*graph.Tensor) map[string][][]float32 {
	t.Helper()
	s, err := kernels.NewSession(m, kernels.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return collectOutputs(t, samples, s.Run)
}

// familyDB bounds the difference between a QDQ model's output SQNR in
// ONNX Runtime and in onnxq. The runtimes round differently in places (ORT
// fuses Q/DQ into integer kernels and requantizes there, onnxq computes
// what the QDQ graph says in float32), and a model that amplifies noise
// amplifies those differences too: the two runs of the ViT's QDQ model are
// themselves only 15 dB apart. Measured over these models and observers:
// at most 1.3 dB (the ViT with min/max ranges), 0.4 dB on the convolutional
// ones. A runtime that read the written model otherwise than onnxq does
// (a scale applied twice, a fusion changing what a pair computes) moves the
// ratio by far more.
const familyDB = 2.0

// familyHalfDB is familyDB for the float16 models. ONNX Runtime computes
// their MatMuls, Softmax and LayerNorm in float16 arithmetic, onnxq in
// float32 rounded to float16 at each op's output (as it computes every
// half-precision graph): on the ViT a tenth of the MatMul outputs' codes
// differ by one step and the Softmax's by up to 11 between the two, the two
// QDQ runs 7.6 dB apart and their SQNRs against float 2.2 dB (ORT 10.4,
// onnxq 8.2); at most 0.3 dB on the other families.
const familyHalfDB = 3.0

// quantizedCompute counts the Conv, ConvTranspose, MatMul, Gemm, LSTM and
// GRU nodes whose weight (input 1) is a DequantizeLinear output.
func quantizedCompute(m *graph.Model) int {
	n := 0
	for _, nd := range m.Graph.Nodes {
		switch nd.OpType {
		case "Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU":
			if w := nd.Input(1); w != nil && w.Producer != nil && w.Producer.OpType == "DequantizeLinear" {
				n++
			}
		}
	}
	return n
}

// ortOutputs runs the model at path in ONNX Runtime (default optimizations,
// 2 threads) on every sample and returns each output's values, samples
// one after another.
func ortOutputs(t *testing.T, path string, samples []map[string]*graph.Tensor) map[string][][]float32 {
	t.Helper()
	s, err := ortref.NewSession(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return collectOutputs(t, samples, s.Run)
}

// collectOutputs runs every sample and returns each output's values, samples
// one after another.
func collectOutputs(t *testing.T, samples []map[string]*graph.Tensor, run func(map[string]*graph.Tensor) (map[string]*graph.Tensor, error)) map[string][][]float32 {
	t.Helper()
	res := map[string][][]float32{}
	for _, in := range samples {
		out, err := run(in)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range out {
			res[k] = append(res[k], slices.Clone(v.Float32s()))
		}
	}
	return res
}

// sqnrDB is 10 log10(sum ref^2 / sum (ref - got)^2) over all samples.
func sqnrDB(ref, got [][]float32) float64 {
	var sig, noise float64
	for i := range ref {
		for j, r := range ref[i] {
			d := float64(r) - float64(got[i][j])
			sig += float64(r) * float64(r)
			noise += d * d
		}
	}
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}

// classAxis is the axis of a logits output of this shape that holds the
// classes: 1 for a segmenter's [N, classes, H, W], the last for a
// classifier's [N, classes] and a tagger's [N, frames, classes].
func classAxis(shape []int) int {
	if len(shape) == 4 {
		return 1
	}
	return len(shape) - 1
}

// top1Scope says what sameTop1 counted for logits of this shape.
func top1Scope(shape []int) string {
	switch {
	case len(shape) == 4:
		return " of pixels"
	case len(shape) == 3:
		return " of frames"
	}
	return ""
}

// sameTop1 is the fraction of positions (a classifier's samples, a
// tagger's frames, a segmenter's pixels) whose largest class score is the
// same class in got as in ref; shape is one sample's logits shape.
func sameTop1(ref, got [][]float32, shape []int) float64 {
	axis := classAxis(shape)
	classes, inner := shape[axis], 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	same, total := 0, 0
	for i := range ref {
		for outer := 0; outer < len(ref[i])/(classes*inner); outer++ {
			for in := 0; in < inner; in++ {
				base := outer*classes*inner + in
				best := func(v []float32) int {
					k := 0
					for c := 1; c < classes; c++ {
						if v[base+c*inner] > v[base+k*inner] {
							k = c
						}
					}
					return k
				}
				if best(ref[i]) == best(got[i]) {
					same++
				}
				total++
			}
		}
	}
	return float64(same) / float64(total)
}

// floatOpTypes summarizes the float nodes by op type, "Softmax x2, Concat".
func floatOpTypes(fs []FloatNode) string {
	count := map[string]int{}
	var order []string
	for _, f := range fs {
		if count[f.OpType] == 0 {
			order = append(order, f.OpType)
		}
		count[f.OpType]++
	}
	var parts []string
	for _, op := range order {
		if count[op] > 1 {
			parts = append(parts, fmt.Sprintf("%s x%d", op, count[op]))
		} else {
			parts = append(parts, op)
		}
	}
	return strings.Join(parts, ", ")
}

// TestClipWindowIsORTs: the encodings clipWindowWarnings names are ones ONNX
// Runtime refuses to load, and the ones it passes load: a MobileNetV2
// block's ReLU6 output pinned to [0, 6.005] is named and refused, pinned to
// [0, 6] or [0, 6.03] neither.
func TestClipWindowIsORTs(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	m := testmodels.MobileNetV2Block(1)
	var clip string
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Clip" {
			clip = n.Output().Name
			break
		}
	}
	if clip == "" {
		t.Fatal("no Clip in the MobileNetV2 block")
	}
	dir, model, cal := withSamples(t, m, 4, []int{1, 8, 16, 16}, 1)
	for i, top := range []float64{6.005, 6, 6.03} {
		f := &overrides.File{Version: overrides.Version, Tensors: map[string]*overrides.Tensor{clip: {Min: []float64{0}, Max: []float64{top}}}}
		out := filepath.Join(dir, fmt.Sprintf("q%d.onnx", i))
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Overrides: f, NoMeasure: true})
		if err != nil {
			t.Fatal(err)
		}
		warned := false
		for _, w := range rep.Warnings {
			warned = warned || strings.Contains(w, "refuses to load")
		}
		s, err := ortref.NewSession(out, 1)
		if err == nil {
			s.Close()
		}
		t.Logf("%s pinned to [0, %g]: warned %v, ONNX Runtime: %v", clip, top, warned, err)
		if warned != (err != nil) {
			t.Errorf("%s pinned to [0, %g]: warned %v, ONNX Runtime's load error: %v", clip, top, warned, err)
		}
	}
}
