//go:build ort

package testmodels_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/testmodels"
)

// TestZooMatchesORT saves every zoo model (and the Families), runs it in onnxq's executor and in
// ONNX Runtime on two sample inputs, and requires max |diff| / max |ORT| <= 1e-4
// on every output. The reference is ORT without graph rewrites: its fusions
// (BN into Conv and the like) re-associate float32 sums, and on MobileNetV2's
// logits, whose head cancels a large feature mean, ORT's own optimization
// levels differ by 7e-5.
func TestZooMatchesORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
		t.Run(name, func(t *testing.T) {
			m := zooModel(t, name)
			path := filepath.Join(dir, name+".onnx")
			if err := graph.Save(m, path); err != nil {
				t.Fatal(err)
			}
			loaded, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := kernels.NewSession(loaded, kernels.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ortref.NewSessionWith(path, 2, ortref.OptNone)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			samples, err := testmodels.Samples(name, m, 2, 11)
			if err != nil {
				t.Fatal(err)
			}
			for i, in := range samples {
				got, err := s.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				want, err := ref.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				for out, w := range want {
					g := got[out]
					if g == nil || g.Len() != w.Len() {
						t.Fatalf("output %q: onnxq %v, ONNX Runtime %v", out, g, w.Shape)
					}
					var maxDiff, maxAbs float64
					gd, wd := g.Float32s(), w.Float32s()
					for j := range wd {
						maxDiff = math.Max(maxDiff, math.Abs(float64(gd[j])-float64(wd[j])))
						maxAbs = math.Max(maxAbs, math.Abs(float64(wd[j])))
					}
					rel := maxDiff / maxAbs
					t.Logf("sample %d, output %q %v: max |ORT| %.3g, relative error %.2e", i, out, w.Shape, maxAbs, rel)
					if !(rel <= 1e-4) {
						t.Errorf("sample %d, output %q differs from ONNX Runtime: %.3e > 1e-4", i, out, rel)
					}
				}
			}
		})
	}
}
