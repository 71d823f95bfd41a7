package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// R3D is a small 3-D ResNet for video clips (Tran et al., 2018, R3D-18 as
// torchvision exports it): every convolution three-dimensional without
// bias, then BatchNormalization and Relu. A 3x7x7 stem with stride 1x2x2,
// a 1x3x3 stride-1x2x2 max pool, three stages of one basic block (two
// 3x3x3 convolutions and the shortcut Add; 16, 32 and 64 channels, the
// later stages opening with stride 2 and a 1x1x1 stride-2 projection on the
// shortcut), a 2x2x2 stride-2 max pool before the last stage, global
// average pooling over time and space, and a Gemm to 400 classes (the
// Kinetics-400 head). Input "input" 1x3x8x56x56 (8 frames), output
// "logits" 1x400.
func R3D(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 8, 56, 56)
	conv := func(x *graph.Value, outC int, k, stride, pad [3]int) *graph.Value {
		s := b.shapes[x]
		c := s[1]
		fan := c * k[0] * k[1] * k[2]
		w := b.Const("w", []int{outC, c, k[0], k[1], k[2]}, b.Normal(outC*fan, 0, math.Sqrt(2/float64(fan))))
		out := []int{s[0], outC, 0, 0, 0}
		for a := 0; a < 3; a++ {
			out[2+a] = (s[2+a]+2*pad[a]-k[a])/stride[a] + 1
		}
		return b.node("Conv", []*graph.Value{x, w}, out,
			graph.AttrIntsOf("kernel_shape", int64(k[0]), int64(k[1]), int64(k[2])),
			graph.AttrIntsOf("strides", int64(stride[0]), int64(stride[1]), int64(stride[2])),
			graph.AttrIntsOf("pads", int64(pad[0]), int64(pad[1]), int64(pad[2]), int64(pad[0]), int64(pad[1]), int64(pad[2])))
	}
	pool := func(x *graph.Value, k, stride, pad [3]int) *graph.Value {
		s := b.shapes[x]
		out := []int{s[0], s[1], 0, 0, 0}
		for a := 0; a < 3; a++ {
			out[2+a] = (s[2+a]+2*pad[a]-k[a])/stride[a] + 1
		}
		return b.node("MaxPool", []*graph.Value{x}, out,
			graph.AttrIntsOf("kernel_shape", int64(k[0]), int64(k[1]), int64(k[2])),
			graph.AttrIntsOf("strides", int64(stride[0]), int64(stride[1]), int64(stride[2])),
			graph.AttrIntsOf("pads", int64(pad[0]), int64(pad[1]), int64(pad[2]), int64(pad[0]), int64(pad[1]), int64(pad[2])))
	}
	cube := func(v int) [3]int { return [3]int{v, v, v} }
	bnRelu := func(x *graph.Value) *graph.Value { return b.Relu(b.BatchNorm(x)) }
	// block is a basic block of outC channels, stride 1 or 2 on every axis.
	block := func(x *graph.Value, outC, stride int) *graph.Value {
		h := bnRelu(conv(x, outC, cube(3), cube(stride), cube(1)))
		h = b.BatchNorm(conv(h, outC, cube(3), cube(1), cube(1)))
		short := x
		if stride != 1 || b.shapes[x][1] != outC {
			short = b.BatchNorm(conv(x, outC, cube(1), cube(stride), cube(0)))
		}
		return b.Relu(b.Add(h, short))
	}
	x = bnRelu(conv(x, 16, [3]int{3, 7, 7}, [3]int{1, 2, 2}, [3]int{1, 3, 3})) // 8x28x28
	x = pool(x, [3]int{1, 3, 3}, [3]int{1, 2, 2}, [3]int{0, 1, 1})             // 8x14x14
	x = block(x, 16, 1)
	x = block(x, 32, 2)                    // 4x7x7
	x = pool(x, cube(2), cube(2), cube(0)) // 2x3x3
	x = block(x, 64, 1)
	s := b.shapes[x]
	x = b.node("GlobalAveragePool", []*graph.Value{x}, []int{s[0], s[1], 1, 1, 1})
	x = b.Gemm(b.Flatten(x), 400)
	renameOutput(b, x, "logits")
	return b.Finish()
}
