package kernels

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// moRun builds a one-node model of op at an opset with nOut outputs, compiles
// it for threads and runs it on the inputs (nil: omitted); an error from
// compiling or running is returned.
func moRun(t *testing.T, op string, opset int64, threads int, attrs []*onnxpb.AttributeProto, nOut int, in ...*graph.Tensor) ([]*graph.Tensor, error) {
	t.Helper()
	m := graph.NewModel(graph.Opset{Version: opset})
	g := m.Graph
	feed := map[string]*graph.Tensor{}
	var vals []*graph.Value
	for i, x := range in {
		if x == nil {
			vals = append(vals, nil)
			continue
		}
		name := fmt.Sprintf("in%d", i)
		vals = append(vals, g.AddInput(name, x.DType, nil))
		feed[name] = x
	}
	var outs []string
	for i := range nOut {
		outs = append(outs, fmt.Sprintf("out%d", i))
	}
	n := g.AddNode(op, "n", vals, outs, attrs...)
	for _, v := range n.Outputs {
		g.AddOutput(v)
	}
	s, err := NewSession(m, Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	res, err := s.Run(feed)
	if err != nil {
		return nil, err
	}
	got := make([]*graph.Tensor, nOut)
	for i, name := range outs {
		got[i] = res[name]
	}
	return got, nil
}

// moMust is moRun on one thread, failing the test on an error.
func moMust(t *testing.T, op string, opset int64, attrs []*onnxpb.AttributeProto, nOut int, in ...*graph.Tensor) []*graph.Tensor {
	t.Helper()
	out, err := moRun(t, op, opset, 1, attrs, nOut, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out
}

// moWant checks a tensor's type, shape and exact values.
func moWant[E comparable](t *testing.T, what string, got *graph.Tensor, dt graph.DataType, shape []int, want []E) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: missing", what)
	}
	if got.DType != dt || !slices.Equal(got.Shape, shape) {
		t.Fatalf("%s: %s %v, want %s %v", what, got.DType.Short(), got.Shape, dt.Short(), shape)
	}
	if g := graph.Elems[E](got); !slices.Equal(g, want) {
		t.Fatalf("%s = %v, want %v", what, g, want)
	}
}

// moWantErr checks err is a one-line error that mentions every fragment.
func moWantErr(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: error spans lines: %q", what, msg)
	}
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("%s: error %q does not mention %q", what, msg, f)
		}
	}
}

func moI64(shape []int, v ...int64) *graph.Tensor   { return graph.Int64Tensor(shape, v) }
func moF32(shape []int, v ...float32) *graph.Tensor { return graph.Float32Tensor(shape, v) }

// ReverseSequence with the batch on axis 1 and on axis 0 reverses the same
// sequences; every element has a distinct value 100t + 10b + k, and extra
// inner elements (k) move with their step.
func TestReverseSequenceBatchAxes(t *testing.T) {
	lens := moI64([]int{2}, 2, 3)
	// time-major [3 steps, 2 batch, 2]
	var tm []int64
	for ti := range 3 {
		for b := range 2 {
			for k := range 2 {
				tm = append(tm, int64(100*ti+10*b+k))
			}
		}
	}
	out := moMust(t, "ReverseSequence", 10, []*onnxpb.AttributeProto{graph.AttrIntOf("batch_axis", 1), graph.AttrIntOf("time_axis", 0)}, 1,
		moI64([]int{3, 2, 2}, tm...), lens)
	moWant(t, "time-major", out[0], graph.Int64, []int{3, 2, 2}, []int64{
		100, 101, 210, 211, // step 0: batch 0 from step 1, batch 1 from step 2
		0, 1, 110, 111, // step 1: batch 0 from step 0, batch 1 stays
		200, 201, 10, 11, // step 2: batch 0 beyond its length, batch 1 from step 0
	})
	// batch-major [2 batch, 3 steps, 2]
	var bm []int64
	for b := range 2 {
		for ti := range 3 {
			for k := range 2 {
				bm = append(bm, int64(100*ti+10*b+k))
			}
		}
	}
	out = moMust(t, "ReverseSequence", 10, []*onnxpb.AttributeProto{graph.AttrIntOf("batch_axis", 0), graph.AttrIntOf("time_axis", 1)}, 1,
		moI64([]int{2, 3, 2}, bm...), lens)
	moWant(t, "batch-major", out[0], graph.Int64, []int{2, 3, 2}, []int64{
		100, 101, 0, 1, 200, 201,
		210, 211, 110, 111, 10, 11,
	})
	// defaults (batch 1, time 0), a length of 0 copies, strings move too
	s := tensorOf(t, graph.String, []int{2, 2}, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")})
	out = moMust(t, "ReverseSequence", 10, nil, 1, s, moI64([]int{2}, 0, 2))
	got := out[0].Data().([][]byte)
	if fmt.Sprintf("%s", got) != "[a d c b]" {
		t.Errorf("strings: %s, want [a d c b]", got)
	}
}

func TestReverseSequenceBadInput(t *testing.T) {
	x := moF32([]int{2, 2}, 1, 2, 3, 4)
	_, err := moRun(t, "ReverseSequence", 10, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("batch_axis", 0), graph.AttrIntOf("time_axis", 0)}, 1, x, moI64([]int{2}, 1, 1))
	moWantErr(t, "equal axes", err, "batch_axis and time_axis")
	_, err = moRun(t, "ReverseSequence", 10, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("batch_axis", 2)}, 1, x, moI64([]int{2}, 1, 1))
	moWantErr(t, "axis 2", err, "batch_axis and time_axis")
	_, err = moRun(t, "ReverseSequence", 10, 1, nil, 1, x, moI64([]int{2}, 3, 1))
	moWantErr(t, "length beyond the steps", err, "sequence_lens[0] = 3")
	_, err = moRun(t, "ReverseSequence", 10, 1, nil, 1, x, moI64([]int{2}, -1, 1))
	moWantErr(t, "negative length", err, "sequence_lens[0] = -1")
	_, err = moRun(t, "ReverseSequence", 10, 1, nil, 1, x, moI64([]int{3}, 1, 1, 1))
	moWantErr(t, "lengths for another batch", err, "sequence_lens has shape [3]")
	_, err = moRun(t, "ReverseSequence", 10, 1, nil, 1, moF32([]int{2}, 1, 2), moI64([]int{2}, 1, 1))
	moWantErr(t, "rank 1", err, "rank 2 or more")
}

// Unique along axis 1 of [[3 1 3 1] [0 5 0 2]]: the columns are (3,0),
// (1,5), (3,0), (1,2).
func TestUniqueAxisSortedAndNot(t *testing.T) {
	x := moI64([]int{2, 4}, 3, 1, 3, 1, 0, 5, 0, 2)
	for _, c := range []struct {
		sorted                 int64
		y                      []int64
		first, inverse, counts []int64
	}{
		// first occurrences in order: (3,0) at 0, (1,5) at 1, (1,2) at 3
		{0, []int64{3, 1, 1, 0, 5, 2}, []int64{0, 1, 3}, []int64{0, 1, 0, 2}, []int64{2, 1, 1}},
		// ascending: (1,2) < (1,5) < (3,0)
		{1, []int64{1, 1, 3, 2, 5, 0}, []int64{3, 1, 0}, []int64{2, 1, 2, 0}, []int64{1, 1, 2}},
	} {
		out := moMust(t, "Unique", 11, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1), graph.AttrIntOf("sorted", c.sorted)}, 4, x)
		what := fmt.Sprintf("sorted=%d", c.sorted)
		moWant(t, what+" Y", out[0], graph.Int64, []int{2, 3}, c.y)
		moWant(t, what+" indices", out[1], graph.Int64, []int{3}, c.first)
		moWant(t, what+" inverse_indices", out[2], graph.Int64, []int{4}, c.inverse)
		moWant(t, what+" counts", out[3], graph.Int64, []int{3}, c.counts)
	}
	// axis -2 on the same data: rows (3 1 3 1) and (0 5 0 2), unsorted keeps them
	out := moMust(t, "Unique", 11, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", -2), graph.AttrIntOf("sorted", 0)}, 4, x)
	moWant(t, "axis -2 Y", out[0], graph.Int64, []int{2, 4}, []int64{3, 1, 3, 1, 0, 5, 0, 2})
	moWant(t, "axis -2 inverse", out[2], graph.Int64, []int{2}, []int64{0, 1})
}

// Unique without axis over types the float path would get wrong: int64
// values one apart near 2^60, strings, and NaNs (sorted last, one group).
func TestUniqueTypes(t *testing.T) {
	big := int64(1) << 60
	out := moMust(t, "Unique", 11, nil, 4, moI64([]int{2, 2}, big+1, big, big+1, -big))
	moWant(t, "int64 Y", out[0], graph.Int64, []int{3}, []int64{-big, big, big + 1})
	moWant(t, "int64 inverse", out[2], graph.Int64, []int{4}, []int64{2, 1, 2, 0})

	s := tensorOf(t, graph.String, []int{4}, [][]byte{[]byte("b"), []byte("a"), []byte("b"), []byte("ab")})
	out = moMust(t, "Unique", 11, []*onnxpb.AttributeProto{graph.AttrIntOf("sorted", 0)}, 2, s)
	if got := fmt.Sprintf("%s", out[0].Data()); got != "[b a ab]" {
		t.Errorf("unsorted strings: %s, want [b a ab]", got)
	}
	moWant(t, "string indices", out[1], graph.Int64, []int{3}, []int64{0, 1, 3})

	nan := float32(math.NaN())
	out = moMust(t, "Unique", 11, nil, 4, moF32([]int{5}, nan, 2, -1, nan, 2))
	y := out[0].Float32s()
	if len(y) != 3 || y[0] != -1 || y[1] != 2 || !math.IsNaN(float64(y[2])) {
		t.Errorf("floats with NaN: Y = %v, want [-1 2 NaN]", y)
	}
	moWant(t, "NaN counts", out[3], graph.Int64, []int{3}, []int64{1, 2, 2})

	// uint8 with only Y asked for
	out = moMust(t, "Unique", 11, nil, 1, tensorOf(t, graph.Uint8, []int{4}, []uint8{9, 0, 9, 255}))
	moWant(t, "uint8 Y", out[0], graph.Uint8, []int{3}, []uint8{0, 9, 255})
}

func TestUniqueBadInput(t *testing.T) {
	x := moF32([]int{2, 2}, 1, 2, 3, 4)
	_, err := moRun(t, "Unique", 11, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 2)}, 1, x)
	moWantErr(t, "axis out of range", err, "axis 2 is out of range")
	_, err = moRun(t, "Unique", 11, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("sorted", 2)}, 1, x)
	moWantErr(t, "sorted 2", err, "sorted must be 0 or 1")
	_, err = moRun(t, "Unique", 11, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, 1, moF32(nil, 1))
	moWantErr(t, "axis of a scalar", err, "out of range for rank 0")
}

func TestBitShiftBothDirections(t *testing.T) {
	left := []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "LEFT")}
	right := []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "RIGHT")}
	u8 := func(v ...uint8) *graph.Tensor { return tensorOf(t, graph.Uint8, []int{len(v)}, v) }
	// bits shifted out are lost; a shift by the width or more gives 0
	out := moMust(t, "BitShift", 11, left, 1, u8(200, 1, 3, 255), u8(1, 7, 8, 9))
	moWant(t, "uint8 left", out[0], graph.Uint8, []int{4}, []uint8{144, 128, 0, 0})
	out = moMust(t, "BitShift", 11, right, 1, u8(200, 128, 255, 255), u8(1, 7, 8, 0))
	moWant(t, "uint8 right", out[0], graph.Uint8, []int{4}, []uint8{100, 1, 0, 255})
	// broadcast a scalar amount over uint64, keeping the top bit
	x := tensorOf(t, graph.Uint64, []int{2, 2}, []uint64{1 << 63, 3, 1<<63 | 1, 12})
	out = moMust(t, "BitShift", 11, right, 1, x, tensorOf(t, graph.Uint64, nil, []uint64{62}))
	moWant(t, "uint64 right", out[0], graph.Uint64, []int{2, 2}, []uint64{2, 0, 2, 0})
	out = moMust(t, "BitShift", 11, left, 1, x, tensorOf(t, graph.Uint64, []int{2, 1}, []uint64{1, 60}))
	moWant(t, "uint64 left", out[0], graph.Uint64, []int{2, 2}, []uint64{0, 6, 1 << 60, 12 << 60})
	out = moMust(t, "BitShift", 11, left, 1, tensorOf(t, graph.Uint16, []int{2}, []uint16{0x8001, 7}), tensorOf(t, graph.Uint16, []int{2}, []uint16{1, 13}))
	moWant(t, "uint16 left", out[0], graph.Uint16, []int{2}, []uint16{2, 0xe000})
	out = moMust(t, "BitShift", 11, right, 1, tensorOf(t, graph.Uint32, []int{2}, []uint32{0xffffffff, 6}), tensorOf(t, graph.Uint32, []int{2}, []uint32{31, 32}))
	moWant(t, "uint32 right", out[0], graph.Uint32, []int{2}, []uint32{1, 0})
}

func TestBitShiftBadInput(t *testing.T) {
	x := tensorOf(t, graph.Uint8, []int{2}, []uint8{1, 2})
	_, err := moRun(t, "BitShift", 11, 1, []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "left")}, 1, x, x)
	moWantErr(t, "lower-case direction", err, `"left"`)
	_, err = moRun(t, "BitShift", 11, 1, nil, 1, x, x)
	moWantErr(t, "no direction", err, "direction")
	_, err = moRun(t, "BitShift", 11, 1, []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "LEFT")}, 1, x, tensorOf(t, graph.Uint16, []int{2}, []uint16{1, 2}))
	moWantErr(t, "mixed types", err, "differ in type")
	_, err = moRun(t, "BitShift", 11, 1, []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "LEFT")}, 1, moI64([]int{1}, 1), moI64([]int{1}, 1))
	moWantErr(t, "signed", err, "unsigned")
	_, err = moRun(t, "BitShift", 11, 1, []*onnxpb.AttributeProto{graph.AttrStringOf("direction", "LEFT")}, 1, x, tensorOf(t, graph.Uint8, []int{3}, []uint8{1, 2, 3}))
	moWantErr(t, "shapes", err, "broadcast")
}

func TestDetCases(t *testing.T) {
	// batched [4, 3, 3]: a matrix needing a row swap (det -3), a singular one
	// (row 1 is half of row 0: elimination gives an exact zero row), one with a
	// zero column, and a triangular one
	x := moF32([]int{4, 3, 3},
		0, 2, 1, 1, 0, 0, 3, 1, 2,
		2, 4, 6, 1, 2, 3, 0, 1, 1,
		1, 0, 2, 3, 0, 4, 5, 0, 6,
		2, 0, 0, 1, 3, 0, 4, 5, -0.5,
	)
	out := moMust(t, "Det", 11, nil, 1, x)
	moWant(t, "3x3 batch", out[0], graph.Float, []int{4}, []float32{-3, 0, 0, -3})
	// 1x1 matrices in a [2, 1, 1] batch, and a single 2x2 giving a scalar
	// one row swap: the sign flips
	out = moMust(t, "Det", 11, nil, 1, moF32([]int{3, 3}, 0, 1, 0, 1, 0, 0, 0, 0, 5))
	moWant(t, "one swap", out[0], graph.Float, []int{}, []float32{-5})
	out = moMust(t, "Det", 11, nil, 1, moF32([]int{2, 1, 1}, -3.5, 0))
	moWant(t, "1x1", out[0], graph.Float, []int{2}, []float32{-3.5, 0})
	out = moMust(t, "Det", 11, nil, 1, tensorOf(t, graph.Double, []int{2, 2}, []float64{1e-200, 1, 1, 1e200}))
	moWant(t, "float64 2x2", out[0], graph.Double, []int{}, []float64{0}) // 1 - 1 = 0
	out = moMust(t, "Det", 11, nil, 1, tensorOf(t, graph.Double, []int{2, 2}, []float64{3, 1e300, 1e-300, 4}))
	moWant(t, "float64 extremes", out[0], graph.Double, []int{}, []float64{11})
	// a 4x4 with pivoting: diag(1, 2, 4, 3) with rows 0-1 and 2-3 swapped
	// (two swaps) has det +24
	out = moMust(t, "Det", 11, nil, 1, moF32([]int{4, 4}, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 3, 0))
	moWant(t, "4x4 permutation", out[0], graph.Float, []int{}, []float32{24})
	// an empty batch and a 0x0 matrix (det 1)
	out = moMust(t, "Det", 11, nil, 1, moF32([]int{0, 2, 2}))
	moWant(t, "empty batch", out[0], graph.Float, []int{0}, []float32{})
	out = moMust(t, "Det", 11, nil, 1, moF32([]int{0, 0}))
	moWant(t, "0x0", out[0], graph.Float, []int{}, []float32{1})
}

func TestDetBadInput(t *testing.T) {
	_, err := moRun(t, "Det", 11, 1, nil, 1, moF32([]int{2, 3}, 1, 2, 3, 4, 5, 6))
	moWantErr(t, "2x3", err, "square", "[2 3]")
	_, err = moRun(t, "Det", 11, 1, nil, 1, moF32([]int{3}, 1, 2, 3))
	moWantErr(t, "vector", err, "square")
	_, err = moRun(t, "Det", 11, 1, nil, 1, moI64([]int{1, 1}, 2))
	moWantErr(t, "int64", err, "float")
}

// Scatter (opset 9 and 10) on int64 data keeps values a float64 path would
// round, takes negative indices and axis, and is gone from opset 11.
func TestScatter(t *testing.T) {
	big := int64(1)<<60 + 1
	data := moI64([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	out := moMust(t, "Scatter", 9, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", -1)}, 1,
		data, moI64([]int{2, 1}, -1, 0), moI64([]int{2, 1}, big, -big))
	moWant(t, "axis -1", out[0], graph.Int64, []int{2, 3}, []int64{1, 2, big, -big, 5, 6})
	out = moMust(t, "Scatter", 10, nil, 1, data, moI64([]int{1, 3}, 1, 0, 1), moI64([]int{1, 3}, 7, 8, 9))
	moWant(t, "axis 0", out[0], graph.Int64, []int{2, 3}, []int64{1, 8, 3, 7, 5, 9})
	if graph.Elems[int64](data)[2] != 3 {
		t.Error("Scatter wrote into its input")
	}
	_, err := moRun(t, "Scatter", 11, 1, nil, 1, data, moI64([]int{1, 1}, 0), moI64([]int{1, 1}, 1))
	moWantErr(t, "opset 11", err, "removed in opset 11", "ScatterElements")
	_, err = moRun(t, "Scatter", 10, 1, nil, 1, data, moI64([]int{1, 1}, 2), moI64([]int{1, 1}, 1))
	moWantErr(t, "index 2 of 2", err, "index 2 is out of range")
	_, err = moRun(t, "Scatter", 10, 1, nil, 1, data, moI64([]int{1, 2}, 0, 0), moI64([]int{2, 1}, 1, 1))
	moWantErr(t, "shapes differ", err, "indices [1 2] and updates [2 1]")
	_, err = moRun(t, "Scatter", 10, 1, nil, 1, data, moI64([]int{1, 4}, 0, 0, 0, 0), moI64([]int{1, 4}, 1, 1, 1, 1))
	moWantErr(t, "indices wider than data", err, "exceed data")
	_, err = moRun(t, "Scatter", 10, 1, nil, 1, data, moI64([]int{1, 1}, 0), moF32([]int{1, 1}, 1))
	moWantErr(t, "updates of another type", err, "updates are float32")
	_, err = moRun(t, "Scatter", 10, 1, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 2)}, 1, data, moI64([]int{1, 1}, 0), moI64([]int{1, 1}, 1))
	moWantErr(t, "axis 2", err, "axis 2 is out of range")
}
