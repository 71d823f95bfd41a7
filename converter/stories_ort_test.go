//go:build ort

package converter

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/passes"
)

// storiesWindows are the token windows of the stories260K README, [118, 256].
func storiesWindows(t testing.TB) *graph.Tensor {
	ids, err := npy.ReadFile(testdata.SharedModel(t, "stories260K", "tinystories_dev_ids.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if ids.DType != graph.Int64 || ids.Rank() != 2 {
		t.Fatalf("token windows: %s %v, want int64 [windows, seq]", ids.DType.Short(), ids.Shape)
	}
	return ids
}

// window is row i of ids as an input_ids tensor [1, seq].
func window(ids *graph.Tensor, i int) *graph.Tensor {
	s := ids.Shape[1]
	return graph.Int64Tensor([]int{1, s}, append([]int64(nil), ids.Int64s()[i*s:(i+1)*s]...))
}

// perplexity runs windows [from, to) of ids through a model in ONNX Runtime
// and returns exp(mean NLL) of the next-token predictions, the README's
// protocol: NLL_t = logsumexp(logits[t]) - logits[t][id[t+1]] in float64.
func perplexity(t *testing.T, model string, ids *graph.Tensor, from, to int) float64 {
	t.Helper()
	return ortPerplexity(t, model, ids, from, to, ortref.OptAll)
}

// storiesCalib writes windows [0, n) as int64 [1, seq] .npy samples.
func storiesCalib(t testing.TB, ids *graph.Tensor, n int) string {
	dir := filepath.Join(t.TempDir(), "calib")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("w%03d.npy", i)), window(ids, i)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// storiesCalibWindows are the calibration windows; the rest are held out.
const storiesCalibWindows = 16

// TestStoriesW8A8Perplexity: stories260K converted with the defaults (uint8
// activations, int8 per-channel weights, minmax) on 16 token windows keeps
// its causal mask and masked scores float and its held-out perplexity near
// float (before masks were recognised: 51.97 against 3.962; with masks and
// without SmoothQuant's default on MatMul inputs +5.95%). The rest of the
// gap at uint8 is per-tensor activation quantization spread over the model
// (SwiGLU products before down_proj, RMSNorm outputs, the RoPE arithmetic on
// k); uint16 activations leave only the weights' share.
func TestStoriesW8A8Perplexity(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	model := testdata.SharedModel(t, "stories260K", "stories260K.onnx")
	ids := storiesWindows(t)
	n := ids.Shape[0]
	// The protocol first: all windows in float give the README's figure.
	if p := perplexity(t, model, ids, 0, n); math.Abs(p-3.9723) > 5e-4 {
		t.Fatalf("float perplexity over all %d windows %.4f, the README says 3.9723", n, p)
	}
	float := perplexity(t, model, ids, storiesCalibWindows, n)
	cal := storiesCalib(t, ids, storiesCalibWindows)
	for _, c := range []struct {
		act   graph.DataType
		bound float64 // x float perplexity
	}{{graph.Uint8, 1.05}, {graph.Uint16, 1.005}} {
		out := filepath.Join(t.TempDir(), c.act.Short()+".onnx")
		// SmoothQuantDefault as the command line sets it: "no flags beyond --calib".
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ActType: c.act, SmoothQuantDefault: true})
		if err != nil {
			t.Fatal(err)
		}
		masks := 0
		for _, f := range rep.FloatTensors {
			if strings.Contains(f.Reason, "attention mask path") {
				masks++
			}
		}
		if masks != 6 { // the mask and the masked scores of 5 layers
			t.Errorf("%s: %d tensors kept float as masks, want 6: %v", c.act.Short(), masks, rep.FloatTensors)
		}
		for _, tr := range rep.Tensors {
			if tr.Kind == "activation" && tr.Encoding.Scale[0] > 1 {
				t.Errorf("%s: %q has scale %g", c.act.Short(), tr.Name, tr.Encoding.Scale[0])
			}
		}
		p := perplexity(t, out, ids, storiesCalibWindows, n)
		t.Logf("held-out perplexity: float %.4f, W8A8 %s activations %.4f (%+.2f%%)", float, c.act.Short(), p, 100*(p/float-1))
		if p > c.bound*float {
			t.Errorf("%s activations: perplexity %.4f above %.3f x float %.4f", c.act.Short(), p, c.bound, float)
		}
	}
}

// TestStoriesSmoothQuantPerplexity: W8A8 static with SmoothQuant on
// stories260K, held-out perplexity in ORT. SmoothQuant 0.5 takes the
// defaults from +5.9% to under +5%; with uint8 weights, which ORT's x86
// kernels multiply exactly (int8 weights meet its u8s8 saturation on CPUs
// without AVX-VNNI), it is within +3% of float.
func TestStoriesSmoothQuantPerplexity(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	model := testdata.SharedModel(t, "stories260K", "stories260K.onnx")
	ids := storiesWindows(t)
	n := ids.Shape[0]
	float := perplexity(t, model, ids, storiesCalibWindows, n)
	cal := storiesCalib(t, ids, storiesCalibWindows)
	got := map[string]float64{}
	for _, c := range []struct {
		name   string
		alpha  float64
		wt     graph.DataType
		reduce bool
	}{
		{"defaults", 0, graph.Int8, false},
		{"sq0.5", 0.5, graph.Int8, false},
		{"sq0.7-reduce-range", 0.7, graph.Int8, true},
		{"uint8-weights", 0, graph.Uint8, false},
		{"sq0.5-uint8-weights", 0.5, graph.Uint8, false},
	} {
		out := filepath.Join(t.TempDir(), c.name+".onnx")
		rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, SmoothQuant: c.alpha, WeightType: c.wt, ReduceRange: c.reduce, NoMeasure: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.alpha > 0 {
			var sq *passes.Change
			for _, ch := range rep.Passes {
				if ch.Pass == "smooth-quant" {
					sq = ch
				}
			}
			// Per layer: the q/k/v input, o_proj's, gate/up's, down_proj's;
			// then lm_head's. Norms and SwiGLU fold, o_proj gets a Mul.
			if sq == nil {
				t.Fatalf("%s: no smooth-quant pass in the report", c.name)
			}
			notes := strings.Join(sq.Notes, "\n")
			if sq.Count != 21 || strings.Count(notes, "folded into") != 16 || strings.Count(notes, "Mul by 1/s") != 5 {
				t.Errorf("%s: smooth-quant pass %+v", c.name, sq)
			}
		}
		got[c.name] = perplexity(t, out, ids, storiesCalibWindows, n)
		t.Logf("%s: held-out perplexity %.4f (float %.4f, %+.2f%%)", c.name, got[c.name], float, 100*(got[c.name]/float-1))
	}
	if got["sq0.5"] > 1.05*float || got["sq0.5"] >= got["defaults"] {
		t.Errorf("SmoothQuant 0.5: %.4f, defaults %.4f, want under 1.05 x float %.4f", got["sq0.5"], got["defaults"], float)
	}
	if got["sq0.5-uint8-weights"] > 1.03*float {
		t.Errorf("SmoothQuant 0.5 with uint8 weights: %.4f above 1.03 x float %.4f", got["sq0.5-uint8-weights"], float)
	}
}
