package kernels

import (
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// seqModel: x -> SplitToSequence (split) -> [SequenceInsert of y at pos]
// -> ConcatFromSequence (axis, new_axis) -> out, plus SequenceLength.
func seqModel(t *testing.T, splitAttrs, concatAttrs []*onnxpb.AttributeProto, split []int64, pos int64) *graph.Model {
	f := graph.Float
	var inits []*graph.Tensor
	splitIn := []string{"x"}
	if split != nil {
		shape := []int{len(split)}
		if len(split) == 1 && split[0] < 0 { // a scalar split
			shape, split = []int{}, []int64{-split[0]}
		}
		inits = append(inits, named(graph.Int64Tensor(shape, split), "split"))
		splitIn = append(splitIn, "split")
	}
	inits = append(inits, named(graph.Int64Tensor([]int{}, []int64{pos}), "pos"))
	g := cfGraph("main", []*onnxpb.NodeProto{
		cfNode("Relu", []string{"xin"}, []string{"x"}),
		cfNode("SplitToSequence", splitIn, []string{"s"}, splitAttrs...),
		cfNode("SequenceInsert", []string{"s", "y", "pos"}, []string{"s2"}),
		cfNode("ConcatFromSequence", []string{"s2"}, []string{"out"}, concatAttrs...),
		cfNode("SequenceLength", []string{"s2"}, []string{"len"}),
		cfNode("SequenceAt", []string{"s2", "pos"}, []string{"at"}),
	}, []*onnxpb.ValueInfoProto{cfInfo("xin", f), cfInfo("y", graph.Undefined)},
		[]*onnxpb.ValueInfoProto{cfInfo("out", f), cfInfo("len", graph.Int64), cfInfo("at", f)}, inits...)
	return cfModel(t, 17, g)
}

func TestSequenceSplitInsertConcat(t *testing.T) {
	x := graph.Float32Tensor([]int{2, 5}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	for _, tc := range []struct {
		name                    string
		split                   []int64
		splitAttrs, concatAttrs []*onnxpb.AttributeProto
		y                       *graph.Tensor
		pos                     int64
		wantShape               []int
		want                    []float32
		wantLen                 int64
		wantAt                  []float32 // SequenceAt(pos) after the insert
	}{
		// axis 1 into [2,1] [2,3] [2,1]; y [2,1] inserted at the front; concat back on axis 1
		{"sizes", []int64{1, 3, 1}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)},
			graph.Float32Tensor([]int{2, 1}, []float32{-1, -2}), 0, []int{2, 6}, []float32{-1, 0, 1, 2, 3, 4, -2, 5, 6, 7, 8, 9}, 4, []float32{-1, -2}},
		// a scalar split 2 on axis 1: [2,2] [2,2] [2,1]; y appended at -1 (before the last)
		{"scalar split", []int64{-2}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)},
			graph.Float32Tensor([]int{2, 3}, []float32{10, 11, 12, 13, 14, 15}), -1, []int{2, 8}, []float32{0, 1, 2, 3, 10, 11, 12, 4, 5, 6, 7, 8, 13, 14, 15, 9}, 4, []float32{4, 9}},
		// no split, keepdims 0: five [2] columns; stacked (new_axis) on axis 1 with y [2] at position 5 (the end)
		{"keepdims 0 stacked", nil, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1), graph.AttrIntOf("keepdims", 0)}, []*onnxpb.AttributeProto{graph.AttrIntOf("axis", -1), graph.AttrIntOf("new_axis", 1)},
			graph.Float32Tensor([]int{2}, []float32{-7, -8}), 5, []int{2, 6}, []float32{0, 1, 2, 3, 4, -7, 5, 6, 7, 8, 9, -8}, 6, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(seqModel(t, tc.splitAttrs, tc.concatAttrs, tc.split, tc.pos), Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			for run := 0; run < 3; run++ {
				out, err := s.Run(map[string]*graph.Tensor{"xin": x, "y": tc.y})
				if err != nil {
					t.Fatal(err)
				}
				wantFloats(t, "concat", out["out"], tc.wantShape, tc.want)
				if l := out["len"].Int64s()[0]; l != tc.wantLen {
					t.Fatalf("length %d, want %d", l, tc.wantLen)
				}
				if tc.wantAt == nil {
					tc.wantAt = tc.y.Float32s()
				}
				if !slices.Equal(out["at"].Float32s(), tc.wantAt) {
					t.Fatalf("SequenceAt(pos) = %v, want %v", out["at"].Float32s(), tc.wantAt)
				}
				s.Recycle(out)
			}
		})
	}
}

func TestSequenceErrors(t *testing.T) {
	x := graph.Float32Tensor([]int{2, 5}, make([]float32, 10))
	axis1 := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}
	for _, tc := range []struct {
		name  string
		m     *graph.Model
		y     *graph.Tensor
		error string
	}{
		{"insert past the end", seqModel(t, axis1, axis1, []int64{2, 3}, 3), graph.Float32Tensor([]int{2, 1}, []float32{1, 2}), "outside"},
		{"insert another type", seqModel(t, axis1, axis1, []int64{2, 3}, 0), graph.Int64Tensor([]int{2, 1}, []int64{1, 2}), "cannot join"},
		{"concat shapes disagree", seqModel(t, axis1, axis1, []int64{2, 3}, 0), graph.Float32Tensor([]int{3, 1}, []float32{1, 2, 3}), "do not fit"},
		{"split sizes", seqModel(t, axis1, axis1, []int64{2, 2}, 0), graph.Float32Tensor([]int{2, 1}, []float32{1, 2}), "add up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(tc.m, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(map[string]*graph.Tensor{"xin": x, "y": tc.y})
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("got %v, want an error with %q", err, tc.error)
			}
		})
	}
}

// TestSequenceItemsOutliveTheirBuffers: SequenceConstruct keeps copies, so
// a producer's buffer that the session recycles after its last reader (the
// construct) and reuses for a later step does not change the sequence.
func TestSequenceItemsOutliveTheirBuffers(t *testing.T) {
	f := graph.Float
	g := cfGraph("main", []*onnxpb.NodeProto{
		cfNode("Relu", []string{"x"}, []string{"a"}),
		cfNode("SequenceConstruct", []string{"a"}, []string{"s"}),
		cfNode("Neg", []string{"x"}, []string{"b"}),
		cfNode("Relu", []string{"b"}, []string{"c"}), // takes a's buffer from the pool
		cfNode("SequenceInsert", []string{"s", "c"}, []string{"s2"}),
		cfNode("ConcatFromSequence", []string{"s2"}, []string{"out"}, graph.AttrIntOf("axis", 0)),
	}, []*onnxpb.ValueInfoProto{cfInfo("x", f)}, []*onnxpb.ValueInfoProto{cfInfo("out", f)})
	s, err := NewSession(cfModel(t, 17, g), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := graph.Float32Tensor([]int{3}, []float32{-1, 2, -3})
	for run := 0; run < 3; run++ {
		out, err := s.Run(map[string]*graph.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		wantFloats(t, "out", out["out"], []int{6}, []float32{0, 2, 0, 1, 0, 3})
		s.Recycle(out)
	}
}
