package testmodels

import "github.com/onnxq/onnxq/graph"

// Small float32 networks of two common families, for the half-precision
// tests (ToHalf converts them) where a full-size model would be slow.

// FireNet is a SqueezeNet-style classifier: a 3x3 stride-2 stem, max pooling,
// fire modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated), a 1x1
// classifier conv with ReLU and global average pooling. Input "input"
// 1x3x64x64, output "logits" 1x10.
func FireNet(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 64, 64)
	x = b.Relu(b.Conv(x, 32, 3, ConvOpts{Stride: 2}))
	x = b.MaxPool(x, 3, 2, 0)
	fire := func(x *graph.Value, squeeze, expand int) *graph.Value {
		s := b.Relu(b.Conv(x, squeeze, 1, ConvOpts{}))
		e1 := b.Relu(b.Conv(s, expand, 1, ConvOpts{}))
		e3 := b.Relu(b.Conv(s, expand, 3, ConvOpts{Pad: 1}))
		sh := append([]int(nil), b.shapes[e1]...)
		sh[1] *= 2
		return b.node("Concat", []*graph.Value{e1, e3}, sh, graph.AttrIntOf("axis", 1))
	}
	x = fire(x, 16, 32)
	x = fire(x, 16, 32)
	x = b.MaxPool(x, 3, 2, 0)
	x = fire(x, 32, 64)
	x = b.Relu(b.Conv(x, 10, 1, ConvOpts{}))
	x = b.Flatten(b.GlobalAveragePool(x))
	renameOutput(b, x, "logits")
	return b.M
}

// ResNetLite is a CIFAR-style ResNet with BatchNorm folded into the convs:
// a 3x3 stem and three stages (16, 32, 64 channels) of two basic blocks, a 1x1
// stride-2 projection where the shape changes, global pooling and a Gemm
// head. Input "input" 1x3x32x32, output "logits" 1x10.
func ResNetLite(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 32, 32)
	x = b.Relu(b.Conv(x, 16, 3, ConvOpts{Pad: 1}))
	for stage, width := range []int{16, 32, 64} {
		for i := 0; i < 2; i++ {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			skip := x
			y := b.Relu(b.Conv(x, width, 3, ConvOpts{Stride: stride, Pad: 1}))
			y = b.Conv(y, width, 3, ConvOpts{Pad: 1})
			if stride != 1 {
				skip = b.Conv(x, width, 1, ConvOpts{Stride: stride})
			}
			x = b.Relu(b.Add(y, skip))
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 10)
	renameOutput(b, x, "logits")
	return b.M
}
