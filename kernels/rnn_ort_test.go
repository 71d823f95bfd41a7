//go:build ort

package kernels

import (
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/testmodels"
)

// TestCrossCheckLSTMZoo runs the benchmark zoo's two-layer LSTM (bidirectional,
// then forward) through onnxq and ONNX Runtime.
func TestCrossCheckLSTMZoo(t *testing.T) {
	m, err := testmodels.Build("lstm", 1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "lstm.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	in, err := testmodels.Samples("lstm", m, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	crossCheck(t, p, in[0])
}

// gruModel is one GRU node with every optional input: bias, sequence_lens
// (rows shorter than the sequence), initial_h, and Y and Y_h as outputs.
func gruModel(t *testing.T, direction string, linearBeforeReset int64, layout int64) *graph.Model {
	const seq, batch, in, hidden = 16, 5, 12, 24 // batch >= gemvRows: the GEMM step path
	dirs := 1
	if direction == "bidirectional" {
		dirs = 2
	}
	b := testmodels.NewBuilder(5, 14)
	xShape, stShape := []int{seq, batch, in}, []int{dirs, batch, hidden}
	yShape := []int{seq, dirs, batch, hidden}
	if layout == 1 {
		xShape, stShape, yShape = []int{batch, seq, in}, []int{batch, dirs, hidden}, []int{batch, seq, dirs, hidden}
	}
	x := b.Input("input", xShape...)
	h0 := b.Input("h0", stShape...)
	w := b.Const("gru_w", []int{dirs, 3 * hidden, in}, b.Normal(dirs*3*hidden*in, 0, 0.4))
	r := b.Const("gru_r", []int{dirs, 3 * hidden, hidden}, b.Normal(dirs*3*hidden*hidden, 0, 0.3))
	bias := b.Const("gru_b", []int{dirs, 6 * hidden}, b.Normal(dirs*6*hidden, 0, 0.2))
	lt, err := graph.TensorOf(graph.Int32, []int{batch}, []int32{seq, seq - 5, 1, 7, seq})
	if err != nil {
		t.Fatal(err)
	}
	lens := b.G.AddInitializer("seq_lens", lt)
	n := b.G.AddNode("GRU", "gru", []*graph.Value{x, w, r, bias, lens, h0}, []string{"y", "y_h"},
		[]*onnxpb.AttributeProto{
			graph.AttrIntOf("hidden_size", hidden),
			graph.AttrStringOf("direction", direction),
			graph.AttrIntOf("linear_before_reset", linearBeforeReset),
			graph.AttrIntOf("layout", layout),
		}...)
	for i, s := range [][]int{yShape, stShape} {
		dims := make([]int64, len(s))
		for j, d := range s {
			dims[j] = int64(d)
		}
		n.Outputs[i].SetTensorType(graph.Float, dims)
		b.G.AddOutput(n.Outputs[i])
	}
	return b.Finish()
}

// TestCrossCheckGRU compares GRU nodes with and without linear_before_reset,
// in every direction and both layouts, against ONNX Runtime.
func TestCrossCheckGRU(t *testing.T) {
	dir := t.TempDir()
	for _, direction := range []string{"forward", "reverse", "bidirectional"} {
		for _, lbr := range []int64{0, 1} {
			for _, layout := range []int64{0} { // ORT's CPU GRU refuses layout 1
				m := gruModel(t, direction, lbr, layout)
				p := filepath.Join(dir, "gru.onnx")
				if err := graph.Save(m, p); err != nil {
					t.Fatal(err)
				}
				x, h0 := m.Graph.Inputs[0], m.Graph.Inputs[1]
				shape := func(v *graph.Value) []int {
					s, ok := v.StaticShape()
					if !ok {
						t.Fatalf("input %s has no static shape", v.Name)
					}
					return s
				}
				t.Logf("direction=%s linear_before_reset=%d layout=%d", direction, lbr, layout)
				crossCheck(t, p, map[string]*graph.Tensor{"input": seededInput(shape(x), 3), "h0": seededInput(shape(h0), 4)})
			}
		}
	}
}
