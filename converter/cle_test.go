package converter

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

// zooData saves zoo model name (seed 1) and n calibration and n evaluation
// samples into a temporary folder.
func zooData(t *testing.T, name string, n int) (model, cal, eval string) {
	t.Helper()
	m, err := testmodels.Build(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model = filepath.Join(dir, "m.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	for k, d := range map[uint64]*string{1: &cal, 2: &eval} {
		*d = filepath.Join(dir, fmt.Sprint("data", k))
		mustMkdir(t, *d)
		samples, err := testmodels.Samples(name, m, n, k)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range samples {
			for _, x := range s {
				if err := npy.WriteFile(filepath.Join(*d, fmt.Sprintf("%02d.npy", i)), x); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return model, cal, eval
}

// TestCLEPerTensorWeights: on the zoo's SqueezeNet 1.1 (fire modules: a
// squeeze conv feeding two expands, whose outputs are concatenated), CLE
// equalizes the pairs and per-tensor int8 weights keep a much better output
// SQNR. Measured on 6 held-out samples: 11.6 -> 18.6 dB (uint8 activations).
func TestCLEPerTensorWeights(t *testing.T) {
	model, cal, eval := zooData(t, "squeezenet", 6)
	var sqnr [2]float64
	for k, cle := range []bool{false, true} {
		rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(t.TempDir(), "q.onnx"), Calib: cal, Eval: eval, WeightPerTensor: true, CLE: cle})
		if err != nil {
			t.Fatal(err)
		}
		sqnr[k] = rep.Measured.Outputs[0].SQNR
		if !cle {
			continue
		}
		var ch *passes.Change
		for _, c := range rep.Passes {
			if c.Pass == "cle" {
				ch = c
			}
		}
		if ch == nil || ch.Count != 33 {
			t.Fatalf("the report's cle entry %+v: want 33 equalized pairs", ch)
		}
	}
	t.Logf("per-tensor int8 weights: output SQNR %.2f dB without CLE, %.2f dB with", sqnr[0], sqnr[1])
	if sqnr[1] < sqnr[0]+4 {
		t.Errorf("CLE took the output SQNR from %.2f to %.2f dB: want at least 4 dB more", sqnr[0], sqnr[1])
	}
}
