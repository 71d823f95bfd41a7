package kernels

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func lossF32(shape []int, v ...float32) *graph.Tensor { return graph.Float32Tensor(shape, v) }

func lossF64(shape []int, v ...float64) *graph.Tensor {
	t, err := graph.TensorOf(graph.Double, shape, v)
	if err != nil {
		panic(err)
	}
	return t
}

func lossI64(shape []int, v ...int64) *graph.Tensor { return graph.Int64Tensor(shape, v) }

func lossI32(shape []int, v ...int32) *graph.Tensor {
	t, err := graph.TensorOf(graph.Int32, shape, v)
	if err != nil {
		panic(err)
	}
	return t
}

// lossRun runs one loss node at opset 13 and returns its outputs in order.
func lossRun(t *testing.T, op string, attrs []*onnxpb.AttributeProto, outs []string, in ...*graph.Tensor) ([]*graph.Tensor, error) {
	t.Helper()
	got, err := runNode(t, "", op, 13, attrs, outs, in...)
	if err != nil {
		return nil, err
	}
	var res []*graph.Tensor
	for _, o := range outs {
		res = append(res, got[o])
	}
	return res, nil
}

// lossWant checks type, shape and values to a relative 1e-6.
func lossWant(t *testing.T, what string, got *graph.Tensor, dt graph.DataType, shape []int, want ...float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no output", what)
	}
	if got.DType != dt || !slices.Equal(got.Shape, shape) {
		t.Fatalf("%s: %s %v, want %s %v", what, got.DType.Short(), got.Shape, dt.Short(), shape)
	}
	vals, err := asFloat64s(got)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if math.IsNaN(w) && math.IsNaN(vals[i]) {
			continue
		}
		if math.Abs(vals[i]-w) > 1e-6*math.Max(1, math.Abs(w)) {
			t.Fatalf("%s: got %v, want %v", what, vals, want)
		}
	}
}

func lossReduction(r string) *onnxpb.AttributeProto { return graph.AttrStringOf("reduction", r) }

// TestNLLLossHand: values worked out by hand for the cases the backend tests
// leave out: int32 targets, float64, the weighted mean over non-ignored
// targets only, a negative ignore_index without weights, an ignore_index
// outside [0, C) with weights, and all targets ignored.
func TestNLLLossHand(t *testing.T) {
	const op = "NegativeLogLikelihoodLoss"
	x := lossF32([]int{2, 3}, -1, -2, -3, -0.5, -1.5, -2.5)
	w := lossF32([]int{3}, 0.5, 1, 2)
	f := graph.Float
	for _, c := range []struct {
		name   string
		attrs  []*onnxpb.AttributeProto
		target *graph.Tensor
		weight *graph.Tensor
		shape  []int
		want   []float64
	}{
		{"none", []*onnxpb.AttributeProto{lossReduction("none")}, lossI32([]int{2}, 2, 0), w, []int{2}, []float64{6, 0.25}},
		{"sum", []*onnxpb.AttributeProto{lossReduction("sum")}, lossI32([]int{2}, 2, 0), w, nil, []float64{6.25}},
		// mean divides by the weights of the targets: 6.25 / (2 + 0.5)
		{"mean weighted", nil, lossI32([]int{2}, 2, 0), w, nil, []float64{2.5}},
		// the ignored target drops out of the sum and of the weights: 0.25 / 0.5
		{"mean weighted ii", []*onnxpb.AttributeProto{lossII(2)}, lossI32([]int{2}, 2, 0), w, nil, []float64{0.5}},
		{"none ii", []*onnxpb.AttributeProto{lossII(2), lossReduction("none")}, lossI64([]int{2}, 2, 0), w, []int{2}, []float64{0, 0.25}},
		// no weights, ignore_index -1: 1.5 over one counted target, not two
		{"mean negative ii", []*onnxpb.AttributeProto{lossII(-1)}, lossI64([]int{2}, -1, 1), nil, nil, []float64{1.5}},
		// an ignore_index above C is never looked up in the weights
		{"mean high ii", []*onnxpb.AttributeProto{lossII(10)}, lossI64([]int{2}, 10, 1), w, nil, []float64{1.5}},
		{"mean all ignored", []*onnxpb.AttributeProto{lossII(0)}, lossI64([]int{2}, 0, 0), nil, nil, []float64{math.NaN()}},
		// ignore_index unset: no value is special, 0 included
		{"mean no ii", nil, lossI64([]int{2}, 0, 0), nil, nil, []float64{0.75}},
	} {
		in := []*graph.Tensor{x, c.target}
		if c.weight != nil {
			in = append(in, c.weight)
		}
		got, err := lossRun(t, op, c.attrs, []string{"loss"}, in...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		lossWant(t, c.name, got[0], f, c.shape, c.want...)
	}

	// float64 [N, C, d]: the class is axis 1, d the trailing axis
	x3 := lossF64([]int{1, 2, 3}, -1, -2, -3, -4, -5, -6)
	t3 := lossI64([]int{1, 3}, 1, 0, 1)
	got, err := lossRun(t, op, []*onnxpb.AttributeProto{lossReduction("none")}, []string{"loss"}, x3, t3)
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "float64 none", got[0], graph.Double, []int{1, 3}, 4, 2, 6)
	got, err = lossRun(t, op, []*onnxpb.AttributeProto{lossII(0)}, []string{"loss"}, x3, t3)
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "float64 mean ii", got[0], graph.Double, nil, 5)
}

// TestSoftmaxCrossEntropyLossHand: log_softmax along axis 1 (not the last
// axis), stable for logits whose exp overflows, int32 labels, the weighted
// mean, and the log_prob output.
func TestSoftmaxCrossEntropyLossHand(t *testing.T) {
	const op = "SoftmaxCrossEntropyLoss"
	ln2, ln3, ln4 := math.Log(2), math.Log(3), math.Log(4)
	x := lossF32([]int{2, 2}, 0, float32(ln3), 1000, 1000)
	lbl := lossI32([]int{2}, 1, 0)
	got, err := lossRun(t, op, []*onnxpb.AttributeProto{lossReduction("none")}, []string{"loss", "log_prob"}, x, lbl)
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "none", got[0], graph.Float, []int{2}, ln4-ln3, ln2)
	lossWant(t, "log_prob", got[1], graph.Float, []int{2, 2}, -ln4, ln3-ln4, -ln2, -ln2)

	// weights [1, 3]: (3 (ln4 - ln3) + ln2) / (3 + 1)
	got, err = lossRun(t, op, nil, []string{"loss"}, x, lbl, lossF32([]int{2}, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "mean weighted", got[0], graph.Float, nil, (3*(ln4-ln3)+ln2)/4)

	// [N, C, d] float64: softmax over C for each d
	x3 := lossF64([]int{1, 2, 2}, 0, 2, ln3, 2)
	got, err = lossRun(t, op, []*onnxpb.AttributeProto{lossReduction("sum")}, []string{"loss", "log_prob"}, x3, lossI64([]int{1, 2}, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "3d sum", got[0], graph.Double, nil, ln4-ln3+ln2)
	lossWant(t, "3d log_prob", got[1], graph.Double, []int{1, 2, 2}, -ln4, -ln2, ln3-ln4, -ln2)

	// the ignored label does not count in the mean: ln2 / 1
	got, err = lossRun(t, op, []*onnxpb.AttributeProto{lossII(-100)}, []string{"loss"}, x, lossI64([]int{2}, -100, 0))
	if err != nil {
		t.Fatal(err)
	}
	lossWant(t, "mean ii", got[0], graph.Float, nil, ln2)
}

// TestLossBadInputs: bad shapes, labels and attributes are errors.
func TestLossBadInputs(t *testing.T) {
	x := lossF32([]int{2, 3}, -1, -2, -3, -0.5, -1.5, -2.5)
	for _, op := range []string{"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"} {
		for _, c := range []struct {
			name  string
			attrs []*onnxpb.AttributeProto
			in    []*graph.Tensor
			want  string
		}{
			{"label >= C", nil, []*graph.Tensor{x, lossI64([]int{2}, 0, 3)}, "outside [0, 3)"},
			{"negative label", []*onnxpb.AttributeProto{lossII(-100)}, []*graph.Tensor{x, lossI64([]int{2}, -1, 0)}, "outside [0, 3)"},
			{"target shape", nil, []*graph.Tensor{x, lossI64([]int{3}, 0, 1, 2)}, "does not fit"},
			{"target rank", nil, []*graph.Tensor{x, lossI64([]int{2, 1}, 0, 1)}, "does not fit"},
			{"input rank 1", nil, []*graph.Tensor{lossF32([]int{3}, 1, 2, 3), lossI64([]int{1}, 0)}, "[N, C, d1, ...]"},
			{"weight length", nil, []*graph.Tensor{x, lossI64([]int{2}, 0, 1), lossF32([]int{2}, 1, 1)}, "weight must be"},
			{"weight type", nil, []*graph.Tensor{x, lossI64([]int{2}, 0, 1), lossF64([]int{3}, 1, 1, 1)}, "weight must be"},
			{"float target", nil, []*graph.Tensor{x, lossF32([]int{2}, 0, 1)}, "int32 or int64"},
			{"int input", nil, []*graph.Tensor{lossI64([]int{1, 2}, 0, 1), lossI64([]int{1}, 0)}, "float32 or float64"},
			{"reduction", []*onnxpb.AttributeProto{lossReduction("avg")}, []*graph.Tensor{x, lossI64([]int{2}, 0, 1)}, "reduction"},
		} {
			_, err := lossRun(t, op, c.attrs, []string{"loss"}, c.in...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %s: got error %v, want one containing %q", op, c.name, err, c.want)
			}
		}
	}
}

// TestLossOpsets: both losses compile at opset 12 (their first) and later.
func TestLossOpsets(t *testing.T) {
	for _, op := range []string{"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"} {
		for _, v := range []int64{12, 13, 22} {
			if !Supported("", op, v) {
				t.Errorf("%s not supported at opset %d", op, v)
			}
		}
		if Supported("", op, 11) {
			t.Errorf("%s supported at opset 11, before it existed", op)
		}
	}
}

func lossII(v int64) *onnxpb.AttributeProto { return graph.AttrIntOf("ignore_index", v) }
