//go:build ort

package converter

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// TestIR3QDQRunsInORT: the QDQ model written from an IR 3 style model (weights
// as graph inputs) loads in ONNX Runtime, and its output matches onnxq's run of
// the same file within one step of the output's scale; with
// KeepInitializerInputs too.
func TestIR3QDQRunsInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		_, out, rep := convertIR3(t, keep)
		q, err := graph.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
		for i, d := 0, x.Float32s(); i < len(d); i++ {
			d[i] = float32(math.Sin(float64(i) * 0.37))
		}
		name := q.Graph.Outputs[0].Name
		var step float64
		for _, tr := range rep.Tensors {
			if tr.Name == name {
				step = float64(tr.Encoding.Scale[0])
			}
		}
		if step == 0 {
			t.Fatalf("output %q has no encoding", name)
		}
		ours := runOnce(t, q, x)
		theirs := ortRunAt(t, out, ortref.OptNone, map[string]*graph.Tensor{"input": x})[name].Float32s()
		worst := 0.0
		for i := range ours {
			worst = math.Max(worst, math.Abs(float64(ours[i])-float64(theirs[i])))
		}
		t.Logf("keep inputs %v: max |onnxq - ORT| = %.2f steps over %d outputs", keep, worst/step, len(ours))
		if worst > step*1.0001 {
			t.Errorf("keep inputs %v: outputs differ by %.3g, more than one step %.3g", keep, worst, step)
		}
	}
}
