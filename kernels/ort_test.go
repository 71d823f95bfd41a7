//go:build ort

package kernels

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// seededInput fills a tensor with U(-1, 1) values from a fixed seed.
func seededInput(shape []int, seed uint64) *graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	d := make([]float32, graph.Numel(shape))
	for i := range d {
		d[i] = float32(r.Float64()*2 - 1)
	}
	return graph.Float32Tensor(shape, d)
}

// relErr is max |a - b| / max |b| over two tensors of one shape.
func relErr(t *testing.T, got, want *graph.Tensor) float64 {
	t.Helper()
	if len(got.Shape) != len(want.Shape) || got.Len() != want.Len() {
		t.Fatalf("shape %v, ONNX Runtime %v", got.Shape, want.Shape)
	}
	var maxDiff, maxAbs float64
	g, w := got.Float32s(), want.Float32s()
	for i := range g {
		maxDiff = math.Max(maxDiff, math.Abs(float64(g[i])-float64(w[i])))
		maxAbs = math.Max(maxAbs, math.Abs(float64(w[i])))
	}
	if maxAbs == 0 {
		return maxDiff
	}
	return maxDiff / maxAbs
}

// crossCheck runs a model file through onnxq and ONNX Runtime on one input and
// requires max abs error / max abs value <= 1e-4 on every output.
func crossCheck(t *testing.T, path string, inputs map[string]*graph.Tensor) {
	t.Helper()
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(path)
	if err != nil {
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
	want, err := ortref.RunFile(path, 2, inputs)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		e := relErr(t, got[name], w)
		t.Logf("%s: output %q %v: max abs err / max abs = %.2e", filepath.Base(path), name, w.Shape, e)
		if e > 1e-4 {
			t.Errorf("%s: output %q differs from ONNX Runtime: %.3e > 1e-4", filepath.Base(path), name, e)
		}
	}
}

func TestCrossCheckPaddleOCR(t *testing.T) {
	for kind, shape := range map[string][]int{"det": {1, 3, 640, 640}, "rec": {1, 3, 48, 320}, "cls": {1, 3, 48, 192}} {
		t.Run(kind, func(t *testing.T) {
			// A rendered text page: on noise the det map is ~1e-7 everywhere and the
			// relative error measures only sigmoid saturation.
			h, w := shape[2], shape[3]
			x := testdata.ImageNetNormalized(testdata.TextImage(h, w, 1), h, w)
			crossCheck(t, testdata.OCRModel(t, kind), map[string]*graph.Tensor{"x": x})
		})
	}
}

func TestCrossCheckTestModels(t *testing.T) {
	dir := t.TempDir()
	for name, shape := range map[string][]int{"convbnrelu": {1, 3, 32, 32}, "resnet50": {1, 3, 224, 224}} {
		t.Run(name, func(t *testing.T) {
			m, err := testmodels.Build(name, 3)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name+".onnx")
			if err := graph.Save(m, p); err != nil {
				t.Fatal(err)
			}
			crossCheck(t, p, map[string]*graph.Tensor{"input": seededInput(shape, 2)})
		})
	}
}

// maxAbsDiff is max |a - b| over two tensors of one shape.
func maxAbsDiff(t *testing.T, got, want *graph.Tensor) float64 {
	t.Helper()
	if got == nil || !sameDims(got.Shape, want.Shape...) {
		t.Fatalf("onnxq gave %v, ONNX Runtime %v", got, want.Shape)
	}
	var d float64
	g, w := got.Float32s(), want.Float32s()
	for i := range g {
		d = math.Max(d, math.Abs(float64(g[i])-float64(w[i])))
	}
	return d
}
