package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestResizeLinearFastPathSameBits: linear resizes through the two-tap
// loops give the general loop's bits, up and down, every coordinate mode,
// on 4-D maps and a 3-D one resized on its last axis only.
func TestResizeLinearFastPathSameBits(t *testing.T) {
	defer func() { noLinearAxis = false }()
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		shape  []int
		scales []float32
	}{{[]int{1, 3, 7, 9}, []float32{1, 1, 2, 2}}, {[]int{2, 2, 10, 8}, []float32{1, 1, 0.5, 0.75}}, {[]int{2, 5, 11}, []float32{1, 1, 1.7}}} {
		x := graph.Float32Tensor(c.shape, randFloats(r, graph.Numel(c.shape)))
		scales := graph.Float32Tensor([]int{len(c.scales)}, c.scales)
		for _, mode := range []string{"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"} {
			attrs := []*onnxpb.AttributeProto{graph.AttrStringOf("mode", "linear"), graph.AttrStringOf("coordinate_transformation_mode", mode)}
			noLinearAxis = true
			want := runOp(t, "Resize", attrs, x, nil, scales)[0].Float32s()
			noLinearAxis = false
			got := runOp(t, "Resize", attrs, x, nil, scales)[0].Float32s()
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v x %v %s: out[%d] = %v, general loop %v", c.shape, c.scales, mode, i, got[i], want[i])
				}
			}
		}
	}
}

// TestAxisOrder: an upsample resizes its last axis first (fewer rows to
// gather), anything else the axes in order.
func TestAxisOrder(t *testing.T) {
	for _, tc := range []struct {
		in, out, want []int
	}{
		{[]int{1, 64, 56, 56}, []int{1, 64, 112, 112}, []int{3, 0, 1, 2}},
		{[]int{1, 64, 56, 56}, []int{1, 64, 28, 28}, []int{0, 1, 2, 3}},
		{[]int{1, 64, 56, 56}, []int{1, 64, 56, 112}, []int{0, 1, 2, 3}},
		{[]int{1, 3, 20}, []int{2, 3, 40}, []int{2, 0, 1}},
		{[]int{7}, []int{14}, []int{0}},
	} {
		if got := axisOrder(tc.in, tc.out); !slices.Equal(got, tc.want) {
			t.Errorf("%v -> %v: order %v, want %v", tc.in, tc.out, got, tc.want)
		}
	}
}
