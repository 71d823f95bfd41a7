//go:build ort

package tune_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/tune"
)

// TestTunedModelMeetsTargetInORT: the planted model tuned to cosine 0.999
// meets it in ONNX Runtime too, on the held-out samples, at every
// optimization level. Unoptimized, ORT computes what onnxq measured
// (0.999906); optimized, on x86 without VNNI, its u8 x s8 kernels add product
// pairs in saturating int16 and land lower (0.99937 here), still above.
func TestTunedModelMeetsTargetInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	model, calib, eval := setup(t)
	res, err := tune.Run(context.Background(), tune.Options{Convert: converter.Options{Model: model, Calib: calib, Threads: 1}, Eval: eval, TargetCos: 0.999})
	if err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(t.TempDir(), "tuned.onnx")
	if err := graph.Save(res.Model, q); err != nil {
		t.Fatal(err)
	}
	m, _ := graph.Load(model)
	src, err := dataset.Open(eval, dataset.InputsOf(m), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []ortref.Optimization{ortref.OptNone, ortref.OptAll} {
		fs, err := ortref.NewSessionWith(model, 1, level)
		if err != nil {
			t.Fatal(err)
		}
		qs, err := ortref.NewSessionWith(q, 1, level)
		if err != nil {
			t.Fatal(err)
		}
		var acc diagnose.Acc
		for i := range src.Len() {
			smp, _ := src.Sample(i)
			a, err := fs.Run(smp)
			if err != nil {
				t.Fatal(err)
			}
			b, err := qs.Run(smp)
			if err != nil {
				t.Fatal(err)
			}
			acc.Add(a["logits"].Float32s(), b["logits"].Float32s())
		}
		fs.Close()
		qs.Close()
		t.Logf("ORT level %v: tuned model cosine %.6f on %d held-out samples (onnxq measured %.6f)", level, acc.Cosine(), src.Len(), res.Best.Metric)
		if acc.Cosine() < 0.999 {
			t.Errorf("ORT level %v: cosine %.6f under the target", level, acc.Cosine())
		}
	}
}
