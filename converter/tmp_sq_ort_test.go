//go:build ort

package converter

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/overrides"
)

func TestTmpSQ(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	model := testdata.SharedModel(t, "stories260K", "stories260K.onnx")
	ids := storiesWindows(t)
	n := ids.Shape[0]
	cal := storiesCalib(t, ids, storiesCalibWindows)
	sm16 := &overrides.File{Version: 1, OpTypes: map[string]*overrides.Rule{"Softmax": {ActivationDType: "uint16"}}}
	for _, c := range []struct {
		name  string
		alpha float64
		wt    graph.DataType
		f     *overrides.File
	}{{"softmax16", 0, graph.Int8, sm16}, {"softmax16-sq0.5", 0.5, graph.Int8, sm16}, {"softmax16-sq0.5-u8w", 0.5, graph.Uint8, sm16}} {
		out := filepath.Join(t.TempDir(), "sq.onnx")
		_, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, SmoothQuant: c.alpha, NoMeasure: true, Overrides: c.f, WeightType: c.wt})
		if err != nil {
			t.Fatal(err)
		}
		p := perplexity(t, out, ids, storiesCalibWindows, n)
		t.Logf("%s: %.4f (%+.2f%%)", c.name, p, 100*(p/3.9620-1))
	}
}
