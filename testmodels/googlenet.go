package testmodels

import "github.com/onnxq/onnxq/graph"

// GoogLeNet is a small GoogLeNet (Inception-v1, Szegedy et al., 2014) as
// the Caffe-born classifiers of the ONNX model zoo have it: convolutions
// with bias and Relu (no BatchNormalization), LRN (size 5, alpha 1e-4, beta
// 0.75) after the first pool and after the second convolution, 3x3
// stride-2 max pools in ceil mode between the stages, and nine Inception
// modules of four branches (1x1; 1x1 then 3x3; 1x1 then 5x5; a 3x3
// stride-1 max pool then 1x1) concatenated; average pooling, Dropout and a
// Gemm to 1000 classes. Half the channels of the original on a 112x112
// input: maps of 56, 28, 14, 7 and 3.
// Input "input" 1x3x112x112, output "logits" 1x1000.
func GoogLeNet(seed uint64) *graph.Model {
	b := NewBuilder(seed, 13)
	x := b.Input("input", 1, 3, 112, 112)
	conv := func(x *graph.Value, outC, k, stride int) *graph.Value {
		return b.Relu(b.Conv(x, outC, k, ConvOpts{Stride: stride, Pad: k / 2}))
	}
	lrn := func(x *graph.Value) *graph.Value {
		return b.node("LRN", []*graph.Value{x}, b.shapes[x], graph.AttrIntOf("size", 5),
			graph.AttrFloatOf("alpha", 1e-4), graph.AttrFloatOf("beta", 0.75), graph.AttrFloatOf("bias", 1))
	}
	pool := func(x *graph.Value) *graph.Value { return b.MaxPoolWith(x, 3, PoolOpts{Stride: 2, Ceil: true}) }
	// inception is a module: c1 1x1; r3 -> c3 3x3; r5 -> c5 5x5; pool -> pp 1x1.
	inception := func(x *graph.Value, c1, r3, c3, r5, c5, pp int) *graph.Value {
		return b.Concat(1, conv(x, c1, 1, 1), conv(conv(x, r3, 1, 1), c3, 3, 1), conv(conv(x, r5, 1, 1), c5, 5, 1),
			conv(b.MaxPool(x, 3, 1, 1), pp, 1, 1))
	}
	x = conv(x, 32, 7, 2) // 56
	x = lrn(pool(x))      // 28
	x = conv(conv(x, 32, 1, 1), 96, 3, 1)
	x = pool(lrn(x)) // 14
	x = inception(x, 32, 48, 64, 8, 16, 16)
	x = inception(x, 64, 64, 96, 16, 48, 32)
	x = pool(x) // 7
	x = inception(x, 96, 48, 104, 8, 24, 32)
	x = inception(x, 80, 56, 112, 12, 32, 32)
	x = inception(x, 64, 64, 128, 12, 32, 32)
	x = inception(x, 56, 72, 144, 16, 32, 32)
	x = inception(x, 128, 80, 160, 16, 64, 64)
	x = pool(x) // 3
	x = inception(x, 128, 80, 160, 16, 64, 64)
	x = inception(x, 192, 96, 192, 24, 64, 64)
	x = b.AveragePool(x, b.shapes[x][2], 1, 0)            // the whole map, as the original's 7x7
	x = b.node("Dropout", []*graph.Value{x}, b.shapes[x]) // inference: the identity
	x = b.Gemm(b.Flatten(x), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}
