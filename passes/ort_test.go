//go:build ort

package passes

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// ortOutputs runs a saved model in ONNX Runtime.
func ortOutputs(t *testing.T, path string, in map[string]*graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	out, err := ortref.RunFile(path, 2, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOptimizedModelsMatchInORT saves models before and after the passes and
// requires ONNX Runtime's outputs on the two to agree within 1e-4 relative.
func TestOptimizedModelsMatchInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name  string
		load  func() (*graph.Model, error)
		input string
		shape []int
		list  string
	}
	ocr := func(kind string) func() (*graph.Model, error) {
		return func() (*graph.Model, error) { return graph.Load(testdata.OCRModel(t, kind)) }
	}
	tm := func(f func(uint64) *graph.Model) func() (*graph.Model, error) {
		return func() (*graph.Model, error) { return f(7), nil }
	}
	cases := []tc{
		{"det", ocr("det"), "x", []int{1, 3, 320, 320}, "default,upgrade-opset"},
		{"rec", ocr("rec"), "x", []int{1, 3, 48, 320}, "default,upgrade-opset"},
		{"cls", ocr("cls"), "x", []int{1, 3, 48, 192}, "default,upgrade-opset"},
		{"convbnrelu", tm(testmodels.ConvBNReLU), "input", []int{1, 3, 32, 32}, "default"},
		{"mobilenetv2-block", tm(testmodels.MobileNetV2Block), "input", []int{1, 8, 16, 16}, "default"},
		{"gemm-bn", tm(testmodels.GemmBN), "input", []int{2, 32}, "default"},
		{"convtranspose-bn", tm(testmodels.ConvTransposeBN), "input", []int{1, 4, 8, 8}, "default"},
		{"unbalanced-cle", tm(testmodels.Unbalanced), "input", []int{1, 3, 16, 16}, "cle"},
		{"convbnrelu-cle", tm(testmodels.ConvBNReLU), "input", []int{1, 3, 32, 32}, "default,cle"},
		{"squeezenet-cle", tm(testmodels.SqueezeNet), "input", []int{1, 3, 224, 224}, "default,cle"},
		{"firenet-cle", tm(testmodels.FireNet), "input", []int{1, 3, 64, 64}, "default,cle"},
		// CLE through residual Adds: ResNet stages, the OCR models' blocks.
		{"resnet20-cle", tm(func(s uint64) *graph.Model { return testmodels.ResNetCIFAR(s, 20, false) }), "input", []int{1, 3, 32, 32}, "default,cle"},
		{"cls-cle", ocr("cls"), "x", []int{1, 3, 48, 192}, "default,cle"},
		{"rec-cle", ocr("rec"), "x", []int{1, 3, 48, 320}, "default,cle"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.load()
			if err != nil {
				t.Fatal(err)
			}
			var x *graph.Tensor
			if len(c.shape) == 4 && c.shape[1] == 3 {
				x = testdata.ImageNetNormalized(testdata.TextImage(c.shape[2], c.shape[3], 5), c.shape[2], c.shape[3])
			} else {
				x = graph.NewTensor(graph.Float, c.shape)
				for i, d := 0, x.Float32s(); i < len(d); i++ {
					d[i] = float32(math.Sin(float64(i)))
				}
			}
			in := map[string]*graph.Tensor{c.input: x}
			before := filepath.Join(dir, c.name+".onnx")
			after := filepath.Join(dir, c.name+".opt.onnx")
			if err := graph.Save(m, before); err != nil {
				t.Fatal(err)
			}
			ps, err := Parse(c.list, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (&Pipeline{Passes: ps}).Run(m); err != nil {
				t.Fatal(err)
			}
			if err := graph.Save(m, after); err != nil {
				t.Fatal(err)
			}
			want, got := ortOutputs(t, before, in), ortOutputs(t, after, in)
			d, name := maxRelDiff(want, got)
			t.Logf("%s: ONNX Runtime output %q changed by %.2e after %s", c.name, name, d, c.list)
			if d > 1e-4 {
				t.Errorf("%s: output %q changed by %.3e in ONNX Runtime", c.name, name, d)
			}
		})
	}
}

// TestLegacyUpgradeRunsInORT: ONNX Runtime runs nothing below opset 7; the
// backend's opset-6 PyTorch exports upgraded to opset 13 give ORT the test
// data's outputs (the backend's tolerance), and the opset-3 LegacyCNN
// upgraded gives ORT what onnxq computes on the model as it was.
func TestLegacyUpgradeRunsInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	upgrade := func(t *testing.T, m *graph.Model) string {
		ps, err := Parse("upgrade-opset:13", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&Pipeline{Passes: ps}).Run(m); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "m.onnx")
		if err := graph.Save(m, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ran := 0
	for name, path := range oldModels(t) {
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		in, want := backendCase(t, m, filepath.Dir(path))
		got, err := ortref.RunFile(upgrade(t, m), 1, in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		ran++
		for out, w := range want {
			wf, err1 := w.AsFloat64()
			gf, err2 := got[out].AsFloat64()
			if err1 != nil || err2 != nil || len(wf) != len(gf) {
				t.Errorf("%s: output %q: %v %v, %d values against %d", name, out, err1, err2, len(gf), len(wf))
				continue
			}
			for i := range wf {
				// ORT keeps subnormals, so the uninitialized test data's
				// 7e-310 come back as they are; the tolerance covers 0 too.
				if math.Abs(gf[i]-wf[i]) > 1e-7+1e-3*math.Abs(wf[i]) && !(math.IsNaN(gf[i]) && math.IsNaN(wf[i])) {
					t.Errorf("%s: output %q[%d] = %g in ORT, the test data %g", name, out, i, gf[i], wf[i])
					break
				}
			}
		}
	}
	t.Logf("%d upgraded backend models run in ORT", ran)

	m := testmodels.LegacyCNN(3)
	samples, err := testmodels.Samples("legacy-cnn", m, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ours []map[string]*graph.Tensor
	for _, in := range samples {
		out, err := runModel(m, in)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, out)
	}
	path := upgrade(t, m)
	for i, in := range samples {
		if d, name := maxRelDiff(ours[i], ortOutputs(t, path, in)); d > 1e-5 {
			t.Errorf("LegacyCNN sample %d: ORT on the upgraded model differs from onnxq on the original by %.3g (%s)", i, d, name)
		}
	}
}
