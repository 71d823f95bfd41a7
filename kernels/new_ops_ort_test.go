//go:build ort

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestVisionOpsMatchORT checks GridSample, RoiAlign, NonMaxSuppression,
// MaxUnpool and Det against ONNX Runtime on inputs the spec's examples do
// not cover: grid points outside [-1, 1], every mode and padding, rois
// across the border, overlapping boxes of several classes.
func TestVisionOpsMatchORT(t *testing.T) {
	s := graph.AttrStringOf
	x := rnd(1, 2, 3, 7, 9)
	grid := rnd(2, 2, 5, 6, 2) // ~N(0,1): a third of the points fall outside [-1, 1]
	var cases []opCase
	for _, mode := range []string{"bilinear", "nearest", "bicubic"} {
		for _, pad := range []string{"zeros", "border", "reflection"} {
			for _, ac := range []int64{0, 1} {
				attrs := []*onnxpb.AttributeProto{s("mode", mode), s("padding_mode", pad), ai("align_corners", ac)}
				cases = append(cases, opCase{name: "GridSample16 " + mode + " " + pad, op: "GridSample", opset: 16, attrs: attrs, inputs: []opInput{fin(x), fin(grid)}, outputs: []string{"y"}})
			}
		}
	}
	for _, mode := range []string{"linear", "cubic"} {
		cases = append(cases, opCase{name: "GridSample20 " + mode, op: "GridSample", opset: 20, attrs: []*onnxpb.AttributeProto{s("mode", mode)}, inputs: []opInput{fin(x), fin(grid)}, outputs: []string{"y"}})
	}
	feat := rnd(3, 2, 4, 12, 10)
	rois := graph.Float32Tensor([]int{4, 4}, []float32{0, 0, 5, 5, -2, 1, 4, 14, 3.3, 2.2, 9.7, 11.1, 1, 1, 1.5, 1.5})
	batch := i64([]int{4}, 0, 1, 1, 0)
	for _, mode := range []string{"avg", "max"} {
		for _, ct := range []string{"half_pixel", "output_half_pixel"} {
			for _, sr := range []int64{0, 2} {
				attrs := []*onnxpb.AttributeProto{s("mode", mode), s("coordinate_transformation_mode", ct), ai("sampling_ratio", sr), ai("output_height", 3), ai("output_width", 4), af("spatial_scale", 0.8)}
				cases = append(cases, opCase{name: "RoiAlign " + mode + " " + ct, op: "RoiAlign", opset: 16, attrs: attrs, inputs: []opInput{fin(feat), fin(rois), fin(batch)}, outputs: []string{"y"}})
			}
		}
	}
	// 2 images, 3 classes, 30 boxes in a 10x10 area: many overlaps.
	bx := rnd(4, 2, 30, 4)
	for i, v := range bx.Float32s() {
		bx.Float32s()[i] = 5 + 3*v
	}
	for _, center := range []int64{0, 1} {
		cases = append(cases, opCase{name: "NonMaxSuppression", op: "NonMaxSuppression", attrs: []*onnxpb.AttributeProto{ai("center_point_box", center)},
			inputs:  []opInput{fin(bx), fin(rnd(5, 2, 3, 30)), kin(i64([]int{1}, 4)), kin(graph.Float32Tensor([]int{1}, []float32{0.3})), kin(graph.Float32Tensor([]int{1}, []float32{-0.5}))},
			outputs: []string{"sel"}, types: []graph.DataType{graph.Int64}})
	}
	cases = append(cases, opCase{name: "Det", op: "Det", inputs: []opInput{fin(rnd(6, 3, 2, 5, 5))}, outputs: []string{"d"}})
	checkOps(t, cases, 2e-5)
}

// TestGroupNormMatchesORT: GroupNormalization at opset 18 (scale and bias
// per group) and 21 (per channel), 2-D and 4-D inputs, against ONNX Runtime.
func TestGroupNormMatchesORT(t *testing.T) {
	var cases []opCase
	for _, c := range []struct {
		opset  int64
		shape  []int
		groups int
	}{{18, []int{2, 6, 5, 7}, 3}, {18, []int{1, 8, 9}, 2}, {21, []int{2, 6, 5, 7}, 3}, {21, []int{1, 8, 3, 3}, 8}} {
		sb := c.groups
		if c.opset >= 21 {
			sb = c.shape[1]
		}
		x := rnd(7, c.shape...)
		for i, v := range x.Float32s() {
			x.Float32s()[i] = 3 + 2*v // a mean away from 0
		}
		cases = append(cases, opCase{name: "GroupNormalization", op: "GroupNormalization", opset: c.opset,
			attrs:  []*onnxpb.AttributeProto{ai("num_groups", int64(c.groups)), af("epsilon", 1e-3)},
			inputs: []opInput{fin(x), kin(rnd(8, sb)), kin(rnd(9, sb))}, outputs: []string{"y"}})
	}
	checkOps(t, cases, 2e-5)
}

// TestLpNormMatchesORT: LpNormalization with p 1 and 2 along the last, a
// middle and the first axis, a zero row included, against ONNX Runtime.
func TestLpNormMatchesORT(t *testing.T) {
	var cases []opCase
	x := rnd(10, 3, 4, 5)
	for i := 0; i < 5; i++ {
		x.Float32s()[i] = 0 // row [0, 0, :] along the last axis
	}
	for _, p := range []int64{1, 2} {
		for _, axis := range []int64{-1, 1, 0} {
			cases = append(cases, opCase{name: "LpNormalization", op: "LpNormalization", opset: 13,
				attrs: []*onnxpb.AttributeProto{ai("p", p), ai("axis", axis)}, inputs: []opInput{fin(x)}, outputs: []string{"y"}})
		}
	}
	checkOps(t, cases, 2e-6)
}

// TestOpset24OpsMatchORT: Swish (alpha 1 and not) and TensorScatter (linear
// and circular, write indices or none, the sequence axis second-last and
// third-last, float and int64) against ONNX Runtime.
func TestOpset24OpsMatchORT(t *testing.T) {
	s := graph.AttrStringOf
	x := rnd(11, 2, 3, 40)
	var cases []opCase
	for _, alpha := range []float32{1, 0.75} {
		cases = append(cases, opCase{name: "Swish", op: "Swish", opset: 24, attrs: []*onnxpb.AttributeProto{af("alpha", alpha)}, inputs: []opInput{fin(x)}, outputs: []string{"y"}})
	}
	past := rnd(12, 2, 3, 8, 4)                                   // [batch, heads, max_seq, head_dim]
	upd := rnd(13, 2, 3, 3, 4)                                    // 3 new positions
	pastMid := rnd(14, 2, 8, 3, 4)                                // sequence on axis 1
	updMid := rnd(15, 2, 2, 3, 4)                                 //
	pastInt := i64([]int{2, 5, 2}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) // int64, axis -2
	pastInt = i64([]int{2, 5, 2}, append(pastInt.Int64s(), pastInt.Int64s()...)...)
	updInt := i64([]int{2, 2, 2}, -1, -2, -3, -4, -5, -6, -7, -8)
	for _, mode := range []string{"linear", "circular"} {
		writes := i64([]int{2}, 5, 2)
		if mode == "circular" {
			writes = i64([]int{2}, 7, 1) // batch row 0 wraps around
		}
		attrs := []*onnxpb.AttributeProto{s("mode", mode)}
		cases = append(cases,
			opCase{name: "TensorScatter " + mode, op: "TensorScatter", opset: 24, attrs: attrs, inputs: []opInput{fin(past), fin(upd), fin(writes)}, outputs: []string{"y"}},
			opCase{name: "TensorScatter " + mode + " axis 1", op: "TensorScatter", opset: 24, attrs: append(attrs, ai("axis", 1)), inputs: []opInput{fin(pastMid), fin(updMid), fin(writes)}, outputs: []string{"y"}},
			opCase{name: "TensorScatter " + mode + " int64", op: "TensorScatter", opset: 24, attrs: attrs, inputs: []opInput{fin(pastInt), fin(updInt), fin(i64([]int{2}, 3, 0))}, outputs: []string{"y"}, types: []graph.DataType{graph.Int64}})
	}
	cases = append(cases, opCase{name: "TensorScatter no indices", op: "TensorScatter", opset: 24, inputs: []opInput{fin(past), fin(upd)}, outputs: []string{"y"}})
	checkOps(t, cases, 2e-6)
}

// TestLpPoolMatchesORT: LpPool (p 2 and 3, strides, pads, auto_pad, and at
// opset 18 ceil_mode and dilations; 1-D and 2-D) and GlobalLpPool against
// ONNX Runtime.
func TestLpPoolMatchesORT(t *testing.T) {
	ints := graph.AttrIntsOf
	x := rnd(21, 2, 3, 9, 11)
	x1 := rnd(22, 2, 3, 13)
	var cases []opCase
	for _, p := range []int64{2, 3} {
		for _, c := range []struct {
			name  string
			opset int64
			x     *graph.Tensor
			attrs []*onnxpb.AttributeProto
		}{
			{"3x3", 11, x, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 3)}},
			{"3x2 s2 padded", 11, x, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 2), ints("strides", 2, 2), ints("pads", 1, 0, 1, 1)}},
			{"SAME_UPPER", 11, x, []*onnxpb.AttributeProto{ints("kernel_shape", 2, 3), ints("strides", 2, 1), graph.AttrStringOf("auto_pad", "SAME_UPPER")}},
			{"1-D", 11, x1, []*onnxpb.AttributeProto{ints("kernel_shape", 4), ints("strides", 3)}},
			{"ceil dilated", 18, x, []*onnxpb.AttributeProto{ints("kernel_shape", 2, 2), ints("strides", 2, 2), ints("dilations", 2, 1), ai("ceil_mode", 1)}},
		} {
			cases = append(cases, opCase{name: fmt.Sprintf("LpPool p%d %s", p, c.name), op: "LpPool", opset: c.opset,
				attrs: append(c.attrs, ai("p", p)), inputs: []opInput{fin(c.x)}, outputs: []string{"y"}})
		}
		cases = append(cases, opCase{name: fmt.Sprintf("GlobalLpPool p%d", p), op: "GlobalLpPool", opset: 11, attrs: []*onnxpb.AttributeProto{ai("p", p)}, inputs: []opInput{fin(x)}, outputs: []string{"y"}})
	}
	checkOps(t, cases, 2e-6)
}

// TestMaxRoiPoolMatchesORT: MaxRoiPool with regions inside, across the
// border and smaller than a bin, two images, spatial_scale 1 and 0.5.
func TestMaxRoiPoolMatchesORT(t *testing.T) {
	x := rnd(31, 2, 3, 10, 12)
	rois := graph.Float32Tensor([]int{5, 5}, []float32{
		0, 0, 0, 11, 9,
		1, 2.4, 1.6, 7.5, 6.2,
		0, -3, -2, 4, 5,
		1, 8, 7, 20, 15,
		0, 5, 5, 5.2, 5.1,
	})
	var cases []opCase
	for _, scale := range []float32{1, 0.5} {
		cases = append(cases, opCase{name: fmt.Sprintf("MaxRoiPool scale %g", scale), op: "MaxRoiPool", opset: 1,
			attrs:  []*onnxpb.AttributeProto{graph.AttrIntsOf("pooled_shape", 3, 4), af("spatial_scale", scale)},
			inputs: []opInput{fin(x), fin(rois)}, outputs: []string{"y"}})
	}
	checkOps(t, cases, 0)
}

// TestGatherBlockQuantizedMatchesORT: ORT GenAI's int4 embedding gather —
// uint8 data packing 2 codes a byte (and 1 at bits 8), with and without
// packed zero points, a partial last block, negative indices; int4 and
// uint4 data gathering on axis 1 with blocks along axes 0 and 2.
func TestGatherBlockQuantizedMatchesORT(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	bytes := func(shape ...int) *graph.Tensor {
		x := graph.NewTensor(graph.Uint8, shape)
		for i, d := 0, x.Data().([]uint8); i < len(d); i++ {
			d[i] = uint8(r.IntN(256))
		}
		return x
	}
	codes := func(dt graph.DataType, shape ...int) *graph.Tensor {
		x := graph.NewTensor(dt, shape)
		v := make([]int64, x.Len())
		for i := range v {
			v[i] = int64(r.IntN(16))
			if dt == graph.Int4 {
				v[i] -= 8
			}
		}
		StoreInt64s(x, v)
		return x
	}
	scales := func(shape ...int) *graph.Tensor {
		x := rnd(uint64(r.IntN(1000)), shape...)
		for i, v := range x.Float32s() {
			x.Float32s()[i] = 0.01 + float32(math.Abs(float64(v)))/10
		}
		return x
	}
	idx := i64([]int{2, 3}, 0, 5, -1, 2, 3, -6)
	q := func(a ...*onnxpb.AttributeProto) []*onnxpb.AttributeProto { return a }
	cases := []opCase{
		// 6 rows of 40 4-bit codes (20 bytes), blocks of 16: 3 blocks, the last partial.
		{name: "uint8 bits 4", domain: "com.microsoft", op: "GatherBlockQuantized", attrs: q(ai("block_size", 16)),
			inputs: []opInput{kin(bytes(6, 20)), fin(idx), kin(scales(6, 3))}, outputs: []string{"y"}},
		{name: "uint8 bits 4 zero points", domain: "com.microsoft", op: "GatherBlockQuantized", attrs: q(ai("block_size", 16)),
			inputs: []opInput{kin(bytes(6, 20)), fin(idx), kin(scales(6, 3)), kin(bytes(6, 2))}, outputs: []string{"y"}},
		{name: "uint8 bits 8 zero points", domain: "com.microsoft", op: "GatherBlockQuantized", attrs: q(ai("block_size", 16), ai("bits", 8)),
			inputs: []opInput{kin(bytes(6, 40)), fin(idx), kin(scales(6, 3)), kin(bytes(6, 3))}, outputs: []string{"y"}},
		{name: "int4 axis 1, blocks on axis 0", domain: "com.microsoft", op: "GatherBlockQuantized", attrs: q(ai("block_size", 16), ai("gather_axis", 1), ai("quantize_axis", 0)),
			inputs: []opInput{kin(codes(graph.Int4, 40, 6)), fin(idx), kin(scales(3, 6)), kin(codes(graph.Int4, 3, 6))}, outputs: []string{"y"}},
		{name: "uint4 no zero points", domain: "com.microsoft", op: "GatherBlockQuantized", attrs: q(ai("block_size", 32), ai("gather_axis", 1), ai("quantize_axis", 2)),
			inputs: []opInput{kin(codes(graph.Uint4, 2, 6, 40)), fin(idx), kin(scales(2, 6, 2))}, outputs: []string{"y"}},
	}
	checkOps(t, cases, 1e-6)
}
