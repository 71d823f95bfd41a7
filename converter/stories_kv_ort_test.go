//go:build ort

package converter

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
)

const kvLayers = 5

// kvFeeds are stories260K_kv's inputs for tokens after a cache (nil: empty).
func kvFeeds(ids []int64, cache map[string]*graph.Tensor) map[string]*graph.Tensor {
	in := map[string]*graph.Tensor{"input_ids": graph.Int64Tensor([]int{1, len(ids)}, ids)}
	for l := 0; l < kvLayers; l++ {
		for _, kv := range []string{"key", "value"} {
			name := fmt.Sprintf("past_key_values.%d.%s", l, kv)
			if c := cache[fmt.Sprintf("present.%d.%s", l, kv)]; c != nil {
				in[name] = c
			} else {
				in[name] = graph.NewTensor(graph.Float, []int{1, 4, 0, 8})
			}
		}
	}
	return in
}

// storiesKVCalib writes windows [from, from+n) cut to seq tokens as token
// samples for the KV model, one folder per sample with a file per input
// (input_ids int64 [1, seq], every cache empty [1, 4, 0, 8]): the first call
// of a generation, which is what calibration runs.
func storiesKVCalib(t *testing.T, ids *graph.Tensor, from, n, seq int) string {
	dir := filepath.Join(t.TempDir(), "calib")
	for i := from; i < from+n; i++ {
		for name, x := range kvFeeds(window(ids, i).Int64s()[:seq], nil) {
			sub := filepath.Join(dir, fmt.Sprintf("sample_%03d", i))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := npy.WriteFile(filepath.Join(sub, name+".npy"), x); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func maxDiff(a, b *graph.Tensor) float64 {
	var d float64
	for i, v := range a.Float32s() {
		d = math.Max(d, math.Abs(float64(v-b.Float32s()[i])))
	}
	return d
}

// kvRun runs a 48-token prefill and then 4 one-token steps fed with the
// presents, returning the logits of every call.
func kvRun(t *testing.T, run func(map[string]*graph.Tensor) (map[string]*graph.Tensor, error), tokens []int64) []map[string]*graph.Tensor {
	t.Helper()
	var outs []map[string]*graph.Tensor
	var cache map[string]*graph.Tensor
	for _, span := range [][2]int{{0, 48}, {48, 49}, {49, 50}, {50, 51}, {51, 52}} {
		out, err := run(kvFeeds(tokens[span[0]:span[1]], cache))
		if err != nil {
			t.Fatal(err)
		}
		outs, cache = append(outs, out), out
	}
	return outs
}

// TestStoriesKVCalibratesAndMatchesORT: stories260K_kv (KV cache inputs,
// empty on the first call) runs in onnxq's executor with ONNX Runtime's
// logits and presents over a prefill and cached steps; `convert` calibrates
// it from token samples (W8A8 static) and converts it weight-only (int4,
// blocks of 32), and each converted model gives the same logits in ORT and
// in onnxq, close to the float model's.
func TestStoriesKVCalibratesAndMatchesORT(t *testing.T) {
	model := testdata.SharedModel(t, "stories260K", "stories260K_kv.onnx")
	ids := storiesWindows(t)
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	tokens := window(ids, 100).Int64s()[:52] // held out from calibration
	both := func(path string) (ours, theirs []map[string]*graph.Tensor) {
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := kernels.NewSession(m, kernels.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ortref.NewSessionWith(path, 2, ortref.OptBasic)
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		return kvRun(t, s.Run, tokens), kvRun(t, ref.Run, tokens)
	}
	ours, float := both(model)
	for i := range float {
		for name, w := range float[i] {
			if d := maxDiff(ours[i][name], w); d > 1e-4 {
				t.Errorf("float model, call %d: %s differs from ONNX Runtime by %.3g", i, name, d)
			}
		}
	}
	t.Logf("float KV model: call 0 logits %v, max abs diff vs ORT %.2e; last step %.2e", float[0]["logits"].Shape,
		maxDiff(ours[0]["logits"], float[0]["logits"]), maxDiff(ours[4]["logits"], float[4]["logits"]))

	calib := storiesKVCalib(t, ids, 0, 8, 64)
	for _, c := range []struct {
		name string
		opt  Options
		tol  float64 // onnxq vs ORT on the converted model
		cos  float64 // least cosine of the logits to the float model's
	}{
		// The logits are dequantized from uint8: both runtimes land on one grid.
		{"w8a8-static", Options{Calib: calib}, 1e-3, 0.995},
		// int4 RTN costs this model 12-17% perplexity (README): cosine ~0.98.
		{"int4-g32-weight-only", Options{Calib: calib, WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32}, 1e-4, 0.97},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := c.opt
			opt.Model, opt.Output, opt.NoMeasure = model, filepath.Join(t.TempDir(), "q.onnx"), true
			rep, err := Convert(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if !opt.WeightOnly && rep.Samples != 8 {
				t.Errorf("calibrated on %d samples, want 8", rep.Samples)
			}
			got, want := both(opt.Output)
			for i := range want {
				d, vsFloat := maxDiff(got[i]["logits"], want[i]["logits"]), maxDiff(want[i]["logits"], float[i]["logits"])
				cos := cosine(want[i]["logits"].Float32s(), float[i]["logits"].Float32s())
				t.Logf("call %d: logits onnxq vs ORT max abs diff %.2e; ORT vs float max abs %.3f, cosine %.5f", i, d, vsFloat, cos)
				if d > c.tol {
					t.Errorf("call %d: onnxq and ORT logits differ by %.3g > %g", i, d, c.tol)
				}
				if cos < c.cos {
					t.Errorf("call %d: logits cosine to the float model %.4f < %g", i, cos, c.cos)
				}
			}
		})
	}
}
