package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// The zoo: common architectures beyond PaddleOCR, for benchmarks against ONNX
// Runtime and for comparing observers and quantization schemes.
//
// Weights are trained-like, not raw random, so that quantization results mean
// something on them:
//   - activations keep an O(1) scale through depth: He (fan-in) initialization,
//     and every BatchNormalization gets the running statistics of what the
//     layer really sees on sample images (the builder's probe forward pass,
//     probe.go), so a BN output has the scale its gamma says;
//   - BN scales are log-normal (channel ranges about 10x apart within a layer),
//     one channel in 32 is an outlier at 4x, shifts around +1 scale (a random
//     network with zero-centred shifts is chaotic, a trained one smooth); the last
//     BN of a residual branch has a smaller median scale, as trained ResNets do;
//     detector and SqueezeNet convolutions carry their BN folded in, as
//     exporters write them, which leaves the same spread in their weights;
//   - LayerNorm scales are log-normal with a few outlier dimensions at 8x;
//   - classifier heads cancel the features' mean and scale by their
//     input-to-input spread, so logits spread by a few units and top-1 depends
//     on the input (the tests check both).
//
// Every model is a pure function of its seed (mkmodel's -seed, 1 by default;
// the tests and `make bench` use 1): the builder draws all weights from one PCG
// stream seeded with it, and its probe images from a second one. Sample inputs
// (Samples) come from a stream seeded with the sample seed. The probe sums in
// float32 in a fixed order, so the same seed gives a byte-identical model.
//
// Measured on seed 1 (TestZooTrainedLike, 16 sample inputs): block outputs
// keep a standard deviation between 0.16 and 2.5 across the zoo; classifier
// logits spread by 0.7-2.4 per class across inputs, with median top-1 margins
// of 0.5-2.2, and top-1 survives input noise of std 0.01 on 88-100% of inputs.

// YOLOSiLU is a YOLOX-nano-style detector: Conv (BN folded) + SiLU written as
// Sigmoid and Mul, depthwise-separable convolutions, CSP blocks with residual
// adds and Concat, an SPP block of stride-1 MaxPools 5/9/13 concatenated, a
// PAFPN neck with nearest upsampling and Concat, and decoupled heads (box
// regression; objectness and 80 class scores through Sigmoid) at strides 8, 16
// and 32. Input "images" 1x3x416x416, output "detections" 1x3549x85.
func YOLOSiLU(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(1)
	cbs := func(x *graph.Value, out, k, stride int) *graph.Value {
		return b.SiLU(b.ConvBN(x, out, k, ConvOpts{Stride: stride, Pad: k / 2}, BNStyle{}, true))
	}
	dw := func(x *graph.Value, out, stride int) *graph.Value {
		c := b.Shape(x)[1]
		x = b.SiLU(b.ConvBN(x, c, 3, ConvOpts{Stride: stride, Pad: 1, Group: c}, BNStyle{}, true))
		return cbs(x, out, 1, 1)
	}
	csp := func(x *graph.Value, out, n int, shortcut bool) *graph.Value {
		hidden := out / 2
		a, side := cbs(x, hidden, 1, 1), cbs(x, hidden, 1, 1)
		for i := 0; i < n; i++ {
			y := dw(cbs(a, hidden, 1, 1), hidden, 1)
			if shortcut {
				y = b.Add(y, a)
			}
			a = y
		}
		y := cbs(b.Concat(1, a, side), out, 1, 1)
		b.MarkBlock(y)
		return y
	}
	x := b.Input("images", 1, 3, 416, 416)
	x = cbs(x, 16, 3, 2)                          // 208
	x = csp(dw(x, 32, 2), 32, 1, true)            // 104
	dark3 := csp(dw(x, 64, 2), 64, 3, true)       // 52
	dark4 := csp(dw(dark3, 128, 2), 128, 3, true) // 26
	x = cbs(dw(dark4, 256, 2), 128, 1, 1)         // 13, SPP
	p5, p9, p13 := b.MaxPoolWith(x, 5, PoolOpts{Pad: 2}), b.MaxPoolWith(x, 9, PoolOpts{Pad: 4}), b.MaxPoolWith(x, 13, PoolOpts{Pad: 6})
	x = cbs(b.Concat(1, x, p5, p9, p13), 256, 1, 1)
	b.MarkBlock(x)
	dark5 := csp(x, 256, 1, false)

	lat5 := cbs(dark5, 128, 1, 1)
	f4 := csp(b.Concat(1, b.Upsample(lat5, 2), dark4), 128, 1, false)
	lat4 := cbs(f4, 64, 1, 1)
	pan3 := csp(b.Concat(1, b.Upsample(lat4, 2), dark3), 64, 1, false)
	pan4 := csp(b.Concat(1, dw(pan3, 64, 2), lat4), 128, 1, false)
	pan5 := csp(b.Concat(1, dw(pan4, 128, 2), lat5), 256, 1, false)

	var outs []*graph.Value
	for _, p := range []*graph.Value{pan3, pan4, pan5} {
		stem := cbs(p, 64, 1, 1)
		cls := dw(dw(stem, 64, 1), 64, 1)
		reg := dw(dw(stem, 64, 1), 64, 1)
		// Trained heads: class logits mostly background (prior 0.01), box
		// offsets of unit scale.
		box := b.HeadConv(reg, 4, 1, 0, 0.2)
		obj := b.Sigmoid(b.HeadConv(reg, 1, 2, -4.6, 0.2))
		cl := b.Sigmoid(b.HeadConv(cls, 80, 2, -4.6, 0.2))
		b.MarkBlock(box)
		s := b.Shape(p)
		outs = append(outs, b.Reshape(b.Concat(1, box, obj, cl), 1, 85, s[2]*s[3]))
	}
	det := b.Transpose(b.Concat(2, outs...), 0, 2, 1)
	renameOutput(b, det, "detections")
	return b.Finish()
}

// SqueezeNet is SqueezeNet 1.1: a 3x3 stride-2 stem, fire modules (squeeze 1x1,
// then expand 1x1 and expand 3x3 concatenated, all with ReLU), 3x3 stride-2
// MaxPools with ceil_mode=1, a final 1x1 conv to 1000 classes with ReLU, global
// average pooling and no Softmax. Input "input" 1x3x224x224, output "logits"
// 1x1000.
func SqueezeNet(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(2)
	conv := func(x *graph.Value, out, k, stride int) *graph.Value {
		return b.Relu(b.ConvBN(x, out, k, ConvOpts{Stride: stride, Pad: k / 2}, BNStyle{}, true))
	}
	fire := func(x *graph.Value, squeeze, expand int) *graph.Value {
		s := conv(x, squeeze, 1, 1)
		y := b.Concat(1, conv(s, expand, 1, 1), conv(s, expand, 3, 1))
		b.MarkBlock(y)
		return y
	}
	pool := func(x *graph.Value) *graph.Value { return b.MaxPoolWith(x, 3, PoolOpts{Stride: 2, Ceil: true}) }
	x := b.Input("input", 1, 3, 224, 224)
	x = b.Relu(b.ConvBN(x, 64, 3, ConvOpts{Stride: 2}, BNStyle{}, true))
	x = pool(x)
	x = fire(fire(x, 16, 64), 16, 64)
	x = pool(x)
	x = fire(fire(x, 32, 128), 32, 128)
	x = pool(x)
	x = fire(fire(x, 48, 192), 48, 192)
	x = fire(fire(x, 64, 256), 64, 256)
	// The classifier conv: per position a spread of 10 around -5 (no
	// class prior), so the ReLU
	// keeps the strong responses and the pooled logits differ by input.
	x = b.Relu(b.HeadConv(x, 1000, 10, -5, 0))
	x = b.Flatten(b.GlobalAveragePool(x))
	renameOutput(b, x, "logits")
	return b.Finish()
}

// ResNetCIFAR is the CIFAR-10 ResNet of He et al. (2016): depth = 6n+2 (20, 56,
// ...), a 3x3 stem and three stages of n basic blocks at 16, 32 and 64
// channels on 32x32, 16x16 and 8x8 maps, each 3x3 conv with BatchNorm (not
// folded) and ReLU, residual adds, global average pooling and a Gemm to 10
// classes. The shortcut where the shape changes is option A (every second
// pixel by Slice, channels zero-padded by Pad) or option B (1x1 stride-2
// conv + BN). Input "input" 1x3x32x32, output "logits" 1x10.
func ResNetCIFAR(seed uint64, depth int, optionA bool) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(8)
	n := (depth - 2) / 6
	x := b.Input("input", 1, 3, 32, 32)
	x = b.Relu(b.ConvBN(x, 16, 3, ConvOpts{Pad: 1, NoBias: true}, BNStyle{}, false))
	for stage, width := range []int{16, 32, 64} {
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			y := b.Relu(b.ConvBN(x, width, 3, ConvOpts{Stride: stride, Pad: 1}, BNStyle{}, false))
			y = b.ConvBN(y, width, 3, ConvOpts{Pad: 1}, BNStyle{Gamma: 0.4, Linear: true}, false)
			skip := x
			if stride != 1 {
				if optionA {
					skip = b.PadChannels(b.Subsample2(x), width/4, width/4)
				} else {
					skip = b.ConvBN(x, width, 1, ConvOpts{Stride: 2}, BNStyle{Gamma: 0.5, Linear: true}, false)
				}
			}
			x = b.Relu(b.Add(y, skip))
			b.MarkBlock(x)
		}
	}
	x = b.Classifier(b.Flatten(b.GlobalAveragePool(x)), 10, 3)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// MobileNetV2 is the full MobileNetV2 (width 1.0): a 3x3 stride-2 stem, 17
// inverted residual blocks (1x1 expand + BN + ReLU6, 3x3 depthwise stride 1 or
// 2 + BN + ReLU6, 1x1 project + BN, residual add where the shape allows), a 1x1
// conv to 1280 channels, global average pooling and a Gemm to 1000 classes.
// BatchNormalization is not folded. Input "input" 1x3x224x224, output "logits"
// 1x1000.
func MobileNetV2(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(2)
	cbr := func(x *graph.Value, out, k, stride, group int) *graph.Value {
		return b.Relu6(b.ConvBN(x, out, k, ConvOpts{Stride: stride, Pad: k / 2, Group: group, NoBias: true}, BNStyle{}, false))
	}
	x := b.Input("input", 1, 3, 224, 224)
	x = cbr(x, 32, 3, 2, 1)
	// expansion, output channels, blocks, first stride, kernel
	x = invertedResiduals(b, x, [][5]int{{1, 16, 1, 1, 3}, {6, 24, 2, 2, 3}, {6, 32, 3, 2, 3}, {6, 64, 4, 2, 3}, {6, 96, 3, 1, 3}, {6, 160, 3, 2, 3}, {6, 320, 1, 1, 3}}, cbr, false, false)
	x = cbr(x, 1280, 1, 1, 1)
	x = b.Classifier(b.Flatten(b.GlobalAveragePool(x)), 1000, 3)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// invertedResiduals adds MobileNetV2's and EfficientNet's stages of
// inverted residual blocks on x: per stage {expansion t, output channels c,
// blocks n, first stride, kernel k}, each block a 1x1 expansion by t (none
// for t = 1) and a k x k depthwise conv through act (conv, BN, activation),
// a squeeze-and-excitation gate on a quarter of the block's input channels
// when se, a linear 1x1 projection with BN (folded when fold), and a
// residual Add where the shape allows, marked as a block output.
func invertedResiduals(b *Builder, x *graph.Value, stages [][5]int, act func(x *graph.Value, out, k, stride, group int) *graph.Value, se, fold bool) *graph.Value {
	for _, s := range stages {
		t, c, n, stride, k := s[0], s[1], s[2], s[3], s[4]
		for i := 0; i < n; i++ {
			if i > 0 {
				stride = 1
			}
			in := b.Shape(x)[1]
			y := x
			if t != 1 {
				y = act(y, in*t, 1, 1, 1)
			}
			y = act(y, in*t, k, stride, in*t)
			if se {
				y = b.SqueezeExcite(y, max(1, in/4))
			}
			residual := stride == 1 && in == c
			st := BNStyle{Linear: true}
			if residual {
				st.Gamma = 0.25
			}
			y = b.ConvBN(y, c, 1, ConvOpts{NoBias: true}, st, fold)
			if residual {
				y = b.Add(x, y)
			}
			b.MarkBlock(y)
			x = y
		}
	}
	return x
}

// EfficientNetB0 is EfficientNet-B0 (Tan and Le, 2019) as exporters write
// it: a 3x3 stride-2 stem, 16 MBConv blocks (1x1 expansion by 6 except the
// first, a 3x3 or 5x5 depthwise conv, a squeeze-and-excitation gate on a
// quarter of the block's input channels, a linear 1x1 projection, a
// residual Add where the shape allows), SiLU written as Sigmoid and Mul
// after every conv but the projections, BatchNormalization folded into the
// convs, a 1x1 head to 1280 channels, global average pooling and a
// classifier to 1000 classes. Input "input" 1x3x224x224, output "logits"
// 1x1000.
func EfficientNetB0(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	b.Probe(2)
	cbs := func(x *graph.Value, out, k, stride, group int) *graph.Value {
		return b.SiLU(b.ConvBN(x, out, k, ConvOpts{Stride: stride, Pad: k / 2, Group: group, NoBias: true}, BNStyle{}, true))
	}
	x := b.Input("input", 1, 3, 224, 224)
	x = cbs(x, 32, 3, 2, 1)
	x = invertedResiduals(b, x, [][5]int{{1, 16, 1, 1, 3}, {6, 24, 2, 2, 3}, {6, 40, 2, 2, 5}, {6, 80, 3, 2, 3}, {6, 112, 3, 1, 5}, {6, 192, 4, 2, 5}, {6, 320, 1, 1, 3}}, cbs, true, true)
	x = cbs(x, 1280, 1, 1, 1)
	x = b.Classifier(b.Flatten(b.GlobalAveragePool(x)), 1000, 3)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// Transformer is a 2-layer post-LN transformer encoder (BERT style) on a
// sequence of 128 vectors of 256 with 4 heads of 64 and an MLP of 1024, as
// PyTorch exports it: Linear as MatMul + Add, heads by Reshape and Transpose,
// scaled MatMul, Softmax, MatMul, output projection, residual Add, then
// LayerNorm; Gelu in the Erf form (Div, Erf, Add, Mul, Mul). Layer 1 has
// separate Q/K/V projections and the LayerNormalization op (opset 17); layer 2
// has one fused QKV projection cut by Split and LayerNorm spelled out as
// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add. A per-token Linear head
// gives 32 classes. Input "input" 1x128x256 (embeddings), output "logits"
// 1x128x32.
func Transformer(seed uint64) *graph.Model {
	const seq, dim, heads, mlp = 128, 256, 4, 1024
	hd := dim / heads
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, seq, dim)
	split := func(v *graph.Value, perm ...int) *graph.Value {
		return b.Transpose(b.Reshape(v, 1, seq, heads, hd), perm...)
	}
	for layer := 0; layer < 2; layer++ {
		var q, k, v *graph.Value
		if layer == 0 {
			// Q and K a little larger than unit scale: trained attention is peaked.
			q, k, v = b.Linear(x, dim, 1.5), b.Linear(x, dim, 1.5), b.Linear(x, dim, 1)
		} else {
			qkv := b.Split(b.Linear(x, 3*dim, 1.2), 2, 3)
			q, k, v = qkv[0], qkv[1], qkv[2]
		}
		scores := b.Binary("Div", b.MatMul(split(q, 0, 2, 1, 3), split(k, 0, 2, 3, 1)), b.Scalar("sqrt_dk", float32(math.Sqrt(float64(hd)))))
		ctx := b.MatMul(b.Softmax(scores), split(v, 0, 2, 1, 3))
		o := b.Linear(b.Reshape(b.Transpose(ctx, 0, 2, 1, 3), 1, seq, dim), dim, 1)
		norm := b.LayerNorm
		if layer == 1 {
			norm = b.LayerNormDecomposed
		}
		x = norm(b.Add(x, o))
		b.MarkBlock(x)
		h := b.Linear(b.GeluErf(b.Linear(x, mlp, 1)), dim, 1.4)
		x = norm(b.Add(x, h))
		b.MarkBlock(x)
	}
	x = b.Linear(x, 32, 3/math.Sqrt(2))
	renameOutput(b, x, "logits")
	return b.Finish()
}

// LSTMModel is a 2-layer recurrent classifier: a bidirectional LSTM (hidden 128)
// whose output is rearranged by Transpose + Reshape to 256 features per step,
// as PyTorch exports stacked layers, then a unidirectional LSTM (hidden 128)
// whose last hidden state feeds a Gemm to 10 classes. Input "input" 64x1x64
// ([seq, batch, features]), output "logits" 1x10.
func LSTMModel(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 64, 1, 64)
	y, _ := b.LSTM(x, 128, true)
	y = b.Reshape(b.Transpose(y, 0, 2, 1, 3), 64, 1, 256)
	b.MarkBlock(y)
	_, h := b.LSTM(y, 128, false)
	h = b.Reshape(h, 1, 128)
	b.MarkBlock(h)
	// The last hidden state has a per-unit spread of about lstmHiddenStd (the
	// builder's probe does not run recurrences).
	w := b.Normal(10*128, 0, 3/(lstmHiddenStd*math.Sqrt(128)))
	x = b.node("Gemm", []*graph.Value{h, b.Const("fc_w", []int{10, 128}, w), b.Const("fc_b", []int{10}, b.Normal(10, 0, 0.5))},
		[]int{1, 10}, graph.AttrIntOf("transB", 1))
	renameOutput(b, x, "logits")
	return b.Finish()
}

// lstmHiddenStd is the measured standard deviation of the last hidden state of
// LSTMModel's second layer on the sample sequences (the zoo test checks it).
const lstmHiddenStd = 0.17
