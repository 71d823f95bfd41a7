//go:build ort

package converter

import (
	"context"
	"path/filepath"
	"testing"

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
	floatSome := onnxqPerplexity(t, model, ids, storiesCalibWindows, storiesCalibWindows+12)
	t.Logf("float onnxq 12: %.4f", floatSome)
	zero := 0.0
	for _, c := range []struct {
		alpha  float64
		reduce bool
		f      *overrides.File
	}{{0.7, true, &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"*.o_proj": {SmoothQuant: &zero}}}},
		{0.7, false, &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"*.o_proj": {SmoothQuant: &zero}}}},
	} {
		out := filepath.Join(t.TempDir(), "sq.onnx")
		_, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, SmoothQuant: c.alpha, ReduceRange: c.reduce, NoMeasure: true, Overrides: c.f})
		if err != nil {
			t.Fatal(err)
		}
		p := perplexity(t, out, ids, storiesCalibWindows, n)
		t.Logf("alpha %.2f reduce %v: %.4f", c.alpha, c.reduce, p)
	}
}
