//go:build ort

package kernels

import (
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// halfCrossCheck saves a float16 model and requires onnxq and ONNX Runtime
// to agree within 1e-2 (max abs error / max abs value) on every output.
func halfCrossCheck(t *testing.T, m *graph.Model, inputs map[string]*graph.Tensor) {
	t.Helper()
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "half.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ortref.RunFile(p, 2, inputs)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		e := relErr(t, got[name], w)
		t.Logf("%s: output %q %v: max abs err / max abs = %.2e", t.Name(), name, w.Shape, e)
		if e > 1e-2 {
			t.Errorf("output %q differs from ONNX Runtime: %.3e > 1e-2", name, e)
		}
	}
}

func TestCrossCheckFloat16(t *testing.T) {
	for name, build := range map[string]func(uint64) *graph.Model{"firenet": testmodels.FireNet, "resnetlite": testmodels.ResNetLite, "convbnrelu": testmodels.ConvBNReLU} {
		t.Run(name, func(t *testing.T) {
			m := build(2)
			if err := testmodels.ToHalf(m, graph.Float16, true); err != nil {
				t.Fatal(err)
			}
			dims, _ := m.Graph.Inputs[0].StaticShape()
			for seed := uint64(1); seed <= 3; seed++ {
				halfCrossCheck(t, m, map[string]*graph.Tensor{"input": seededInput(dims, seed)})
			}
		})
	}
	for _, name := range []string{"squeezenet", "resnet-cifar"} {
		t.Run(name, func(t *testing.T) {
			m, err := testmodels.Build(name, 1)
			if err != nil {
				t.Fatal(err)
			}
			samples, err := testmodels.Samples(name, m, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			if err := testmodels.ToHalf(m, graph.Float16, true); err != nil {
				t.Fatal(err)
			}
			for _, in := range samples {
				halfCrossCheck(t, m, in)
			}
		})
	}
	t.Run("rec", func(t *testing.T) {
		m, err := graph.Load(testdata.OCRModel(t, "rec"))
		if err != nil {
			t.Fatal(err)
		}
		if err := testmodels.ToHalf(m, graph.Float16, true); err != nil {
			t.Fatal(err)
		}
		halfCrossCheck(t, m, map[string]*graph.Tensor{"x": testdata.OCRInput("rec", 48, 320, 1)})
	})
}
