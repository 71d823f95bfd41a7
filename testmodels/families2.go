package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// MobileNetV3 is a MobileNetV3-Small-like classifier (Howard et al., 2019):
// a 3x3 stride-2 stem with HardSwish, eight inverted-residual blocks (a 1x1
// expansion, a 3x3 or 5x5 depthwise convolution, squeeze-and-excitation
// gated by HardSigmoid on most, a 1x1 projection, the residual Add where
// shapes allow) with Relu in the first three and h-swish after, a 1x1 conv
// to 576 channels, global pooling, a Gemm to 1024 with HardSwish and one to
// 1000 classes. h-swish is the HardSwish op in the stem and head and
// x * HardSigmoid(x) in the blocks, as exporters wrote it before opset 14
// (the pattern the executor fuses). Input "input" 1x3x224x224, output
// "logits" 1x1000.
func MobileNetV3(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 224, 224)
	hsig := func(x *graph.Value) *graph.Value {
		return b.node("HardSigmoid", []*graph.Value{x}, b.Shape(x), graph.AttrFloatOf("alpha", 1.0/6), graph.AttrFloatOf("beta", 0.5))
	}
	hswish := func(x *graph.Value) *graph.Value { return b.Unary("HardSwish", x) }
	hswishMul := func(x *graph.Value) *graph.Value { return b.Binary("Mul", x, hsig(x)) }
	cba := func(x *graph.Value, c, k, stride, group int, act func(*graph.Value) *graph.Value) *graph.Value {
		y := b.BatchNorm(b.Conv(x, c, k, ConvOpts{Stride: stride, Pad: k / 2, Group: group, NoBias: true}))
		if act != nil {
			y = act(y)
		}
		return y
	}
	se := func(x *graph.Value, squeeze int) *graph.Value {
		s := b.Relu(b.Conv(b.GlobalAveragePool(x), squeeze, 1, ConvOpts{}))
		return b.Binary("Mul", x, hsig(b.Conv(s, b.Shape(x)[1], 1, ConvOpts{})))
	}
	x = cba(x, 16, 3, 2, 1, hswish)
	for _, l := range []struct {
		k, expand, out, stride int
		se, hswish             bool
	}{
		{3, 16, 16, 2, true, false}, {3, 72, 24, 2, false, false}, {3, 88, 24, 1, false, false},
		{5, 96, 40, 2, true, true}, {5, 240, 40, 1, true, true}, {5, 120, 48, 1, true, true},
		{5, 288, 96, 2, true, true}, {5, 576, 96, 1, true, true},
	} {
		act := b.Relu
		if l.hswish {
			act = hswishMul
		}
		h := x
		if l.expand != b.Shape(x)[1] {
			h = cba(h, l.expand, 1, 1, 1, act)
		}
		h = cba(h, l.expand, l.k, l.stride, l.expand, act)
		if l.se {
			h = se(h, (l.expand/4+7)/8*8)
		}
		h = cba(h, l.out, 1, 1, 1, nil)
		if l.stride == 1 && b.Shape(x)[1] == l.out {
			h = b.Add(x, h)
		}
		x = h
	}
	x = cba(x, 576, 1, 1, 1, hswish)
	x = hswish(b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 1024))
	x = b.Gemm(x, 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// DenseNet is a small DenseNet-BC (Huang et al., 2017): a 3x3 stride-2 stem
// to 32 channels, three dense blocks of four layers (growth 16) whose every
// layer is pre-activation BatchNormalization, Relu, a 1x1 conv to 64, again
// BatchNormalization and Relu, a 3x3 conv to 16, and a Concat of its input
// and output; between blocks a BatchNormalization, Relu, 1x1 conv halving
// the channels and 2x2 average pooling. A final BatchNormalization and Relu,
// global pooling and a Gemm to 10 classes. Pre-activation BatchNormalization
// follows a Concat, not a Conv: nothing folds it. Input "input" 1x3x96x96,
// output "logits" 1x10.
func DenseNet(seed uint64) *graph.Model {
	const growth = 16
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 96, 96)
	brc := func(x *graph.Value, c, k int) *graph.Value {
		return b.Conv(b.Relu(b.BatchNorm(x)), c, k, ConvOpts{Pad: k / 2, NoBias: true})
	}
	x = b.Conv(x, 2*growth, 3, ConvOpts{Stride: 2, Pad: 1, NoBias: true})
	for blk := 0; blk < 3; blk++ {
		for l := 0; l < 4; l++ {
			x = b.Concat(1, x, brc(brc(x, 4*growth, 1), growth, 3))
		}
		if blk < 2 {
			x = b.AveragePool(brc(x, b.Shape(x)[1]/2, 1), 2, 2, 0)
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(b.Relu(b.BatchNorm(x)))), 10)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// ViT is a small Vision Transformer (Dosovitskiy et al., 2021) as timm
// exports it: an 8x8 stride-8 patch convolution to 96 channels, Reshape
// and Transpose to 64 tokens, a learned class token Concat in front and a
// position embedding Add; four pre-norm blocks of LayerNormalization,
// three-head attention (Q, K, V Linears, heads split by Reshape and
// Transpose, the scores scaled by a Mul, Softmax, the product with V, heads
// merged, an output Linear) and an MLP (Linear to 384, Gelu in the Erf
// form, Linear back), each with its residual Add; a final
// LayerNormalization, the class token taken by Gather and a Gemm to 1000
// classes. Input "input" 1x3x64x64, output "logits" 1x1000.
func ViT(seed uint64) *graph.Model {
	const img, patch, dim, heads, depth, mlp = 64, 8, 96, 3, 4, 384
	const tokens, seq, hd = (img / patch) * (img / patch), (img/patch)*(img/patch) + 1, dim / heads
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, img, img)
	t := b.Transpose(b.Reshape(b.Conv(x, dim, patch, ConvOpts{Stride: patch}), 1, dim, tokens), 0, 2, 1)
	t = b.Concat(1, b.Const("cls_token", []int{1, 1, dim}, b.Normal(dim, 0, 0.5)), t)
	t = b.Add(t, b.Const("pos_embed", []int{1, seq, dim}, b.Normal(seq*dim, 0, 0.5)))
	split := func(v *graph.Value, perm ...int) *graph.Value {
		return b.Transpose(b.Reshape(v, 1, seq, heads, hd), perm...)
	}
	for l := 0; l < depth; l++ {
		h := b.LayerNorm(t)
		q, k, v := b.Linear(h, dim, 1), b.Linear(h, dim, 1), b.Linear(h, dim, 1)
		s := b.Binary("Mul", b.MatMul(split(q, 0, 2, 1, 3), split(k, 0, 2, 3, 1)), b.Scalar("attn_scale", float32(1/math.Sqrt(hd))))
		a := b.MatMul(b.Softmax(s), split(v, 0, 2, 1, 3))
		t = b.Add(t, b.Linear(b.Reshape(b.Transpose(a, 0, 2, 1, 3), 1, seq, dim), dim, 1))
		t = b.Add(t, b.Linear(b.GeluErf(b.Linear(b.LayerNorm(t), mlp, 1)), dim, 1))
	}
	x = b.Gemm(b.Gather(b.LayerNorm(t), 1, 0), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// ESPCN is an efficient sub-pixel super-resolution network (Shi et al.,
// 2016) for 3x upscaling of a luminance image: a 5x5 conv to 64 channels
// and a 3x3 conv to 32, each with Tanh, a 3x3 conv to 9 channels and
// DepthToSpace (mode CRD, as PyTorch exports PixelShuffle). An image in, an
// image out: no classifier. Input "input" 1x1x96x96, output "image"
// 1x1x288x288.
func ESPCN(seed uint64) *graph.Model {
	const scale = 3
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 1, 96, 96)
	x = b.Unary("Tanh", b.Conv(x, 64, 5, ConvOpts{Pad: 2}))
	x = b.Unary("Tanh", b.Conv(x, 32, 3, ConvOpts{Pad: 1}))
	x = b.Conv(x, scale*scale, 3, ConvOpts{Pad: 1})
	s := b.Shape(x)
	x = b.node("DepthToSpace", []*graph.Value{x}, []int{1, 1, s[2] * scale, s[3] * scale},
		graph.AttrIntOf("blocksize", scale), graph.AttrStringOf("mode", "CRD"))
	renameOutput(b, x, "image")
	return b.Finish()
}

// GRUTagger is a speech-style sequence tagger: a bidirectional GRU (hidden
// 96, linear_before_reset as PyTorch exports it) over 48 frames of 40
// features, its two directions joined by Transpose and Reshape, and a Linear
// to 29 classes per frame (a CTC head's shape). Input "input" 48x1x40
// ([seq, batch, features]), output "logits" 48x1x29.
func GRUTagger(seed uint64) *graph.Model {
	const seq, feats, hidden, classes = 48, 40, 96, 29
	b := NewBuilder(seed, 17)
	x := b.Input("input", seq, 1, feats)
	w := b.Const("gru_w", []int{2, 3 * hidden, feats}, b.Normal(2*3*hidden*feats, 0, math.Sqrt(1/float64(feats))))
	r := b.Const("gru_r", []int{2, 3 * hidden, hidden}, b.Normal(2*3*hidden*hidden, 0, 0.8/math.Sqrt(hidden)))
	bias := b.Const("gru_b", []int{2, 6 * hidden}, b.Normal(2*6*hidden, 0, 0.1))
	ys := b.nodeN("GRU", []*graph.Value{x, w, r, bias}, [][]int{{seq, 2, 1, hidden}},
		graph.AttrIntOf("hidden_size", hidden), graph.AttrStringOf("direction", "bidirectional"), graph.AttrIntOf("linear_before_reset", 1))
	y := b.Reshape(b.Transpose(ys[0], 0, 2, 1, 3), seq, 1, 2*hidden)
	x = b.Linear(y, classes, 1)
	renameOutput(b, x, "logits")
	return b.Finish()
}
