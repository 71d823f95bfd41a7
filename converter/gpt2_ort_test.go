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
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
)

// gpt2Step is a batch-1 tiny-random-gpt2 call: tokens, positions from past
// on, an all-ones mask, and the caches (empty on the first call).
func gpt2Step(ids []int32, past int, pasts map[string]*graph.Tensor) map[string]*graph.Tensor {
	s, tot := len(ids), past+len(ids)
	i32 := func(n int, f func(i int) int32) *graph.Tensor {
		t := graph.NewTensor(graph.Int32, []int{1, n})
		for i := range t.Data().([]int32) {
			t.Data().([]int32)[i] = f(i)
		}
		return t
	}
	in := map[string]*graph.Tensor{
		"input_ids":      i32(s, func(i int) int32 { return ids[i] }),
		"position_ids":   i32(s, func(i int) int32 { return int32(past + i) }),
		"attention_mask": i32(tot, func(int) int32 { return 1 }),
	}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("past_%d", i)
		if p := pasts[name]; p != nil {
			in[name] = p
		} else {
			in[name] = graph.NewTensor(graph.Float, []int{2, 1, 4, 0, 8})
		}
	}
	return in
}

// TestGPT2ConvertedRunsInORT: tiny-random-gpt2 (ONNX Runtime's fused
// Attention, SkipLayerNormalization, FastGelu, EmbedLayerNormalization)
// converted weight-only int4 with blocks of 32, as blocked DequantizeLinear
// and as MatMulNBits, and W8A8 static calibrated on int32 token samples,
// quantizes all 16 MatMul weights, keeps the fused ops' weights float with
// the reason in the report, and runs in ONNX Runtime as a prefill and a
// cached step with the same logits as onnxq's executor (1e-4; 1e-3 for the
// W8A8 model, whose logits sit on a uint8 grid).
func TestGPT2ConvertedRunsInORT(t *testing.T) {
	model := testdata.SharedModel(t, "tiny-random-gpt2", "past.onnx")
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	calib := t.TempDir()
	for i, ids := range [][]int32{{98, 5, 17, 600, 3, 250}, {98, 44, 2, 981, 7, 7}, {98, 300, 12}} {
		for name, x := range gpt2Step(ids, 0, nil) {
			if err := os.MkdirAll(filepath.Join(calib, name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := npy.WriteFile(filepath.Join(calib, name, fmt.Sprintf("%d.npy", i)), x); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		opt  Options
		tol  float64
	}{
		{FormatONNX, Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, WeightFormat: FormatONNX}, 1e-4},
		{FormatMatMulNBits, Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, WeightFormat: FormatMatMulNBits}, 1e-4},
		{"w8a8-static", Options{Calib: calib}, 1e-3},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "gpt2.q.onnx")
			opt := c.opt
			opt.Model, opt.Output, opt.NoMeasure = model, out, true
			rep, err := Convert(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			weights := 0
			for _, tr := range rep.Tensors {
				if tr.Kind == "weight" {
					weights++
				}
			}
			var attnReason string
			for _, f := range rep.FloatNodes {
				if f.OpType == "Attention" {
					attnReason = f.Reason
				}
			}
			if weights != 16 || !strings.Contains(attnReason, "QKV projection weight") {
				t.Errorf("%d weights quantized (want the 16 MatMul weights); Attention kept float because %q", weights, attnReason)
			}
			m, err := graph.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := kernels.NewSession(m, kernels.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ortref.NewSessionWith(out, 1, ortref.OptBasic)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			var pasts map[string]*graph.Tensor
			past := 0
			for step, ids := range [][]int32{{98, 7, 311, 42, 999}, {5}} {
				in := gpt2Step(ids, past, pasts)
				want, err := ref.Run(in)
				if err != nil {
					t.Fatalf("ONNX Runtime: %v", err)
				}
				got, err := sess.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				w, g := want["logits"].Float32s(), got["logits"].Float32s()
				for i := range w {
					worst = math.Max(worst, math.Abs(float64(w[i]-g[i])))
				}
				t.Logf("%s step %d: logits %v, max abs diff onnxq vs ORT %.2e", c.name, step, want["logits"].Shape, worst)
				if worst > c.tol {
					t.Errorf("step %d: onnxq and ORT logits differ by %.3g", step, worst)
				}
				pasts = map[string]*graph.Tensor{}
				for i := 0; i < 5; i++ {
					pasts[fmt.Sprintf("past_%d", i)] = want[fmt.Sprintf("present_%d", i)]
				}
				past += len(ids)
			}
		})
	}
}
