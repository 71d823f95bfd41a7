package converter

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/wround"
)

func TestAdaRoundCLEPerTensorInt4(t *testing.T) {
	for _, name := range []string{"squeezenet", "mobilenetv2"} {
	model, cal, eval := zooData(t, name, 8)
	sqnr := func(wt graph.DataType, algo string, cle bool, iters int, lr float64) float64 {
		r := wround.DefaultOptions()
		r.AdaRoundIters, r.AdaRoundLR = iters, lr
		rep, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(t.TempDir(), "q.onnx"), Calib: cal, Eval: eval,
			ActType: graph.Uint16, WeightType: wt, WeightPerTensor: true, CLE: cle, WeightRounding: algo, Rounding: r})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Measured.Outputs[0].SQNR
	}
	t.Logf("%s int8 %.2f cle %.2f", name, sqnr(graph.Int8, "nearest", false, 0, 0), sqnr(graph.Int8, "nearest", true, 0, 0))
	t.Logf("%s int4 %.2f cle %.2f", name, sqnr(graph.Int4, "nearest", false, 0, 0), sqnr(graph.Int4, "nearest", true, 0, 0))
	for _, it := range []int{1000} {
		for _, lr := range []float64{1e-2} {
			t.Logf("%s int4 adaround+cle iters %d lr %g: %.2f; without cle %.2f", name, it, lr, sqnr(graph.Int4, "adaround", true, it, lr), sqnr(graph.Int4, "adaround", false, it, lr))
		}
	}
	t.Logf("%s int4 gptq+cle %.2f", name, sqnr(graph.Int4, "gptq", true, 0, 0))
	}
}
