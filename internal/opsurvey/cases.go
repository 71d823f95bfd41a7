//go:build ort

package main

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

type tcase struct {
	name  string
	shape string
	build func() *mb
}

func (b *mb) conv2d(x *graph.Value, cin, cout, k, stride, pad, group, dil int) *graph.Value {
	w := b.he(cin/group*k*k, cout, cin/group, k, k)
	bias := b.w(0.05, cout)
	return b.op("Conv", vs(x, w, bias),
		aIs("kernel_shape", int64(k), int64(k)), aIs("strides", int64(stride), int64(stride)),
		aIs("pads", int64(pad), int64(pad), int64(pad), int64(pad)), aIs("dilations", int64(dil), int64(dil)),
		aI("group", int64(group)))
}

func convT(k, s, p int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 64, 56, 56)
		w := b.w(math.Sqrt(1/float64(64*k*k)), 64, 32, k, k)
		y := b.op("ConvTranspose", vs(x, w, b.w(0.05, 32)), aIs("kernel_shape", int64(k), int64(k)),
			aIs("strides", int64(s), int64(s)), aIs("pads", int64(p), int64(p), int64(p), int64(p)))
		b.out(y, graph.Float)
		return b
	}
}

// vol3 is a Conv (to cout channels, He-initialized, no bias) or a pool with
// three spatial axes: kernel k, strides st, the same padding p at both ends.
func vol3(op string, shape []int, cout int, k, st, p [3]int) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", shape...)
		ins := vs(x)
		attrs := []*onnxpb.AttributeProto{aIs("strides", int64(st[0]), int64(st[1]), int64(st[2])),
			aIs("pads", int64(p[0]), int64(p[1]), int64(p[2]), int64(p[0]), int64(p[1]), int64(p[2]))}
		if op == "Conv" {
			ins = vs(x, b.he(shape[1]*k[0]*k[1]*k[2], cout, shape[1], k[0], k[1], k[2]))
		} else {
			attrs = append(attrs, aIs("kernel_shape", int64(k[0]), int64(k[1]), int64(k[2])))
		}
		b.out(b.op(op, ins, attrs...), graph.Float)
		return b
	}
}

// tfSame is a 3x3 stride-2 convolution on 1 x cin x 112 x 112 as
// TensorFlow exports SAME padding: the extra row and column at the end
// (pads 0,0,1,1), or through auto_pad when autoPad is set.
func tfSame(cin, cout, group int, autoPad string) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", 1, cin, 112, 112)
		attrs := []*onnxpb.AttributeProto{aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aI("group", int64(group))}
		if autoPad != "" {
			attrs = append(attrs, aS("auto_pad", autoPad))
		} else {
			attrs = append(attrs, aIs("pads", 0, 0, 1, 1))
		}
		b.out(b.op("Relu", vs(b.op("Conv", vs(x, b.he(cin/group*9, cout, cin/group, 3, 3), b.w(0.05, cout)), attrs...))), graph.Float)
		return b
	}
}

func convCase(shape []int, cout, k, stride, pad, group, dil int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		b.out(b.conv2d(x, shape[1], cout, k, stride, pad, group, dil), graph.Float)
		return b
	}
}

// convRelu6 is a "same" convolution with the Clip(0, 6) MobileNets put
// after it (BatchNormalization folded, as ONNX Runtime folds it).
func convRelu6(shape []int, cout, k, stride, group int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		b.out(b.op("Clip", vs(b.conv2d(x, shape[1], cout, k, stride, k/2, group, 1), b.scalar(0), b.scalar(6))), graph.Float)
		return b
	}
}

// convRelu is a Conv with explicit padding followed by a Relu (SqueezeNet's
// layers: unpadded stem, odd map sizes).
func convRelu(shape []int, cout, k, stride, pad int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		b.out(b.op("Relu", vs(b.conv2d(x, shape[1], cout, k, stride, pad, 1, 1))), graph.Float)
		return b
	}
}

// stemPool is a stem Conv and Relu followed by a 3x3 stride-2 MaxPool
// (ResNet's padded, SqueezeNet's in ceil mode), which run as one step.
func stemPool(cout, k, pad, poolPad int, ceil bool) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 3, 224, 224)
		y := b.op("Relu", vs(b.conv2d(x, 3, cout, k, 2, pad, 1, 1)))
		attrs := []any{aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aIs("pads", int64(poolPad), int64(poolPad), int64(poolPad), int64(poolPad))}
		if ceil {
			attrs = append(attrs, aI("ceil_mode", 1))
		}
		b.out(b.op("MaxPool", vs(y), toAttrs(attrs)...), graph.Float)
		return b
	}
}

// mbv2Chain is MobileNetV2's layers after the stem at 112x112: the first
// block's depthwise 3x3 and projection, the second's expansion and
// depthwise stride 2 (BatchNormalization folded), the first n of them:
// inside a model a layer reads what the one before just wrote.
func mbv2Chain(n int) func() *mb {
	return func() *mb {
		b := newMB(17)
		y := b.in("x", 1, 32, 112, 112)
		relu6 := func(v *graph.Value) *graph.Value { return b.op("Clip", vs(v, b.scalar(0), b.scalar(6))) }
		layers := []func(){
			func() { y = relu6(b.conv2d(y, 32, 32, 3, 1, 1, 32, 1)) },
			func() { y = b.conv2d(y, 32, 16, 1, 1, 0, 1, 1) },
			func() { y = relu6(b.conv2d(y, 16, 96, 1, 1, 0, 1, 1)) },
			func() { y = relu6(b.conv2d(y, 96, 96, 3, 2, 1, 96, 1)) },
		}
		for _, f := range layers[:n] {
			f()
		}
		b.out(y, graph.Float)
		return b
	}
}

// convSiLU is a Conv followed by x*Sigmoid(x), as YOLO exports its SiLU
// (BatchNormalization folded).
func convSiLU(shape []int, cout, k, stride, group int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		y := b.conv2d(x, shape[1], cout, k, stride, k/2, group, 1)
		b.out(b.op("Mul", vs(y, b.op("Sigmoid", vs(y)))), graph.Float)
		return b
	}
}

func resize(mode string, extra ...any) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 56, 56)
		attrs := []any{aS("mode", mode)}
		if mode == "nearest" {
			attrs = append(attrs, aS("coordinate_transformation_mode", "asymmetric"), aS("nearest_mode", "floor"))
		} else {
			attrs = append(attrs, aS("coordinate_transformation_mode", "half_pixel"))
		}
		if mode == "cubic" {
			attrs = append(attrs, aF("cubic_coeff_a", -0.75))
		}
		_ = extra
		pa := toAttrs(attrs)
		y := b.op("Resize", vs(x, nil, b.fc([]int{4}, []float32{1, 1, 2, 2})), pa...)
		b.out(y, graph.Float)
		return b
	}
}

func unary(op string, opset int64, shape ...int) func() *mb {
	return func() *mb {
		b := newMB(opset)
		x := b.in("x", shape...)
		b.out(b.op(op, vs(x)), graph.Float)
		return b
	}
}

// lrn is LRN as the Caffe-born classifiers (AlexNet, GoogLeNet) use it:
// size 5, alpha 1e-4, beta 0.75, bias 1.
func lrn(shape ...int) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", shape...)
		b.out(b.op("LRN", vs(x), aI("size", 5), aF("alpha", 1e-4), aF("beta", 0.75), aF("bias", 1)), graph.Float)
		return b
	}
}

func reduce(op string, axes []int64, keep int64, shape ...int) func() *mb {
	return func() *mb {
		b := newMB(18)
		x := b.in("x", shape...)
		b.out(b.op(op, vs(x, b.i64(axes...)), aI("keepdims", keep)), graph.Float)
		return b
	}
}

func pad(mode string, p int64) func() *mb {
	return func() *mb {
		b := newMB(18)
		x := b.in("x", 1, 64, 56, 56)
		ins := vs(x, b.i64(0, 0, p, p, 0, 0, p, p))
		if mode == "constant" {
			ins = append(ins, b.scalar(0))
		}
		b.out(b.op("Pad", ins, aS("mode", mode)), graph.Float)
		return b
	}
}

func rnn(op string, bidir bool, seq, in, hidden int) func() *mb {
	return func() *mb {
		b := newMB(14)
		x := b.in("x", seq, 1, in)
		dirs := 1
		attrs := []any{aI("hidden_size", int64(hidden))}
		if bidir {
			dirs = 2
			attrs = append(attrs, aS("direction", "bidirectional"))
		}
		g := 4
		if op == "GRU" {
			g = 3
			attrs = append(attrs, aI("linear_before_reset", 1)) // as PyTorch exports
		}
		w := b.w(1/math.Sqrt(float64(in)), dirs, g*hidden, in)
		r := b.w(0.8/math.Sqrt(float64(hidden)), dirs, g*hidden, hidden)
		bb := b.w(0.05, dirs, 2*g*hidden)
		outs := b.opN(op, 2, vs(x, w, r, bb), toAttrs(attrs)...)
		b.out(outs[0], graph.Float)
		b.out(outs[1], graph.Float)
		return b
	}
}

func pool(op string, shape []int, k, s, p int, extra ...any) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		attrs := append([]any{aIs("kernel_shape", int64(k), int64(k)), aIs("strides", int64(s), int64(s)),
			aIs("pads", int64(p), int64(p), int64(p), int64(p))}, extra...)
		b.out(b.op(op, vs(x), toAttrs(attrs)...), graph.Float)
		return b
	}
}

// softmax is Softmax over the last axis of an input of shape.
func softmax(shape ...int) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", shape...)
		b.out(b.op("Softmax", vs(x), aI("axis", -1)), graph.Float)
		return b
	}
}

func topk(n, k int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", 1, n)
		o := b.opN("TopK", 2, vs(x, b.i64(int64(k))), aI("axis", -1))
		b.out(o[0], graph.Float)
		b.out(o[1], graph.Int64)
		return b
	}
}

func argmax(axis int64, shape ...int) func() *mb {
	return func() *mb {
		b := newMB(17)
		x := b.in("x", shape...)
		b.out(b.op("ArgMax", vs(x), aI("axis", axis), aI("keepdims", 1)), graph.Int64)
		return b
	}
}

var cases = []tcase{
	// ---------- per-run overhead baseline ----------
	{"Relu tiny (per-run overhead)", "1x16", unary("Relu", 13, 1, 16)},
	{"Relu 1x1000", "1x1000", unary("Relu", 13, 1, 1000)},
	// ---------- convolutions ----------
	{"ConvTranspose k2s2", "1x64x56x56 -> 32ch 112x112", convT(2, 2, 0)},
	{"ConvTranspose k4s2p1", "1x64x56x56 -> 32ch 112x112", convT(4, 2, 1)},
	{"ConvTranspose k3s1p1", "1x64x56x56 -> 32ch 56x56", convT(3, 1, 1)},
	{"Conv3x3 (control)", "1x64x56x56 -> 64", convCase([]int{1, 64, 56, 56}, 64, 3, 1, 1, 1, 1)},
	{"AlexNet stem 11x11 s4 p2", "1x3x224x224 -> 64", convCase([]int{1, 3, 224, 224}, 64, 11, 4, 2, 1, 1)},
	{"AlexNet conv2 5x5 p2 (27x27)", "1x64x27x27 -> 192", convCase([]int{1, 64, 27, 27}, 192, 5, 1, 2, 1, 1)},
	{"AlexNet conv3 3x3 p1 (13x13)", "1x192x13x13 -> 384", convCase([]int{1, 192, 13, 13}, 384, 3, 1, 1, 1, 1)},
	{"VGG conv1 3x3 p1 (224x224)", "1x3x224x224 -> 64", convCase([]int{1, 3, 224, 224}, 64, 3, 1, 1, 1, 1)},
	{"VGG conv2 3x3 p1 (224x224)", "1x64x224x224 -> 64", convCase([]int{1, 64, 224, 224}, 64, 3, 1, 1, 1, 1)},
	{"Gemm 1x9216 -> 4096 (AlexNet fc6)", "1x9216", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 9216)
		b.out(b.op("Gemm", vs(x, b.w(0.01, 4096, 9216), b.w(0.01, 4096)), aI("transB", 1)), graph.Float)
		return b
	}},
	{"Conv1x1 (control)", "1x64x56x56 -> 256", convCase([]int{1, 64, 56, 56}, 256, 1, 1, 0, 1, 1)},
	{"Conv stem 7x7 s2", "1x3x224x224 -> 64", convCase([]int{1, 3, 224, 224}, 64, 7, 2, 3, 1, 1)},
	{"Conv patchify 16x16 s16 (ViT-B)", "1x3x224x224 -> 768", convCase([]int{1, 3, 224, 224}, 768, 16, 16, 0, 1, 1)},
	{"Conv patchify 8x8 s8 (small ViT)", "1x3x64x64 -> 96", convCase([]int{1, 3, 64, 64}, 96, 8, 8, 0, 1, 1)},
	{"Conv patchify 4x4 s4 (ConvNeXt, Swin stem)", "1x3x224x224 -> 96", convCase([]int{1, 3, 224, 224}, 96, 4, 4, 0, 1, 1)},
	{"Conv1d k3 p1 (Whisper)", "1x80x3000 -> 384", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 80, 3000)
		y := b.op("Conv", vs(x, b.he(80*3, 384, 80, 3), b.w(0.05, 384)), aIs("kernel_shape", 3), aIs("pads", 1, 1))
		b.out(y, graph.Float)
		return b
	}},
	{"Conv1d k3 s2 (Whisper conv2)", "1x384x3000 -> 384 s2", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 384, 3000)
		y := b.op("Conv", vs(x, b.he(384*3, 384, 384, 3), b.w(0.05, 384)), aIs("kernel_shape", 3), aIs("pads", 1, 1), aIs("strides", 2))
		b.out(y, graph.Float)
		return b
	}},
	{"MBv2 expand 1x1+Relu6", "1x16x112x112 -> 96", convRelu6([]int{1, 16, 112, 112}, 96, 1, 1, 1)},
	{"MBv2 depthwise 3x3 s2+Relu6", "1x96x112x112", convRelu6([]int{1, 96, 112, 112}, 96, 3, 2, 96)},
	{"MBv2 depthwise 3x3+Relu6", "1x32x112x112", convRelu6([]int{1, 32, 112, 112}, 32, 3, 1, 32)},
	{"MBv2 chain dw+project (112x112)", "1x32x112x112 -> 16", mbv2Chain(2)},
	{"MBv2 chain dw+project+expand (112x112)", "1x32x112x112 -> 96", mbv2Chain(3)},
	{"MBv2 chain dw+project+expand+dw s2 (112x112)", "1x32x112x112 -> 96x56x56", mbv2Chain(4)},
	{"MBv2 project 1x1 (112x112)", "1x32x112x112 -> 16", convCase([]int{1, 32, 112, 112}, 16, 1, 1, 0, 1, 1)},
	{"MBv2 project 1x1", "1x96x56x56 -> 24", convCase([]int{1, 96, 56, 56}, 24, 1, 1, 0, 1, 1)},
	{"MBv2 expand 1x1+Relu6 (56x56)", "1x24x56x56 -> 144", convRelu6([]int{1, 24, 56, 56}, 144, 1, 1, 1)},
	{"MBv2 depthwise 3x3+Relu6 (56x56)", "1x144x56x56", convRelu6([]int{1, 144, 56, 56}, 144, 3, 1, 144)},
	{"MBv2 project 1x1 (14x14)", "1x384x14x14 -> 64", convCase([]int{1, 384, 14, 14}, 64, 1, 1, 0, 1, 1)},
	{"MBv2 head 1x1+Relu6", "1x320x7x7 -> 1280", convRelu6([]int{1, 320, 7, 7}, 1280, 1, 1, 1)},
	{"SqueezeNet stem 3x3 s2 p0+Relu", "1x3x224x224 -> 64 (111x111)", convRelu([]int{1, 3, 224, 224}, 64, 3, 2, 0)},
	{"SqueezeNet stem+Relu+MaxPool 3x3 s2 ceil", "1x3x224x224 -> 64x55x55", stemPool(64, 3, 0, 0, true)},
	{"ResNet stem 7x7 s2+Relu+MaxPool 3x3 s2 p1", "1x3x224x224 -> 64x56x56", stemPool(64, 7, 3, 1, false)},
	{"SqueezeNet fire expand 3x3+Relu (55x55)", "1x16x55x55 -> 64", convRelu([]int{1, 16, 55, 55}, 64, 3, 1, 1)},
	{"SqueezeNet fire expand 1x1+Relu (55x55)", "1x16x55x55 -> 64", convRelu([]int{1, 16, 55, 55}, 64, 1, 1, 0)},
	{"SqueezeNet squeeze 1x1+Relu (55x55)", "1x128x55x55 -> 16", convRelu([]int{1, 128, 55, 55}, 16, 1, 1, 0)},
	{"Inception stem 3x3 s2 p0+Relu (107x107)", "1x3x107x107 -> 16", convRelu([]int{1, 3, 107, 107}, 16, 3, 2, 0)},
	{"Inception stem 3x3 p0+Relu (53x53)", "1x16x53x53 -> 16", convRelu([]int{1, 16, 53, 53}, 16, 3, 1, 0)},
	{"Inception stem 3x3 p1+Relu (51x51)", "1x16x51x51 -> 32", convRelu([]int{1, 16, 51, 51}, 32, 3, 1, 1)},
	{"Inception stem 3x3 p0+Relu (25x25)", "1x40x25x25 -> 64", convRelu([]int{1, 40, 25, 25}, 64, 3, 1, 0)},
	{"ResNet-50 1x1 256->64+Relu (56x56)", "1x256x56x56 -> 64", convRelu([]int{1, 256, 56, 56}, 64, 1, 1, 0)},
	{"ResNet-50 1x1 64->64+Relu (56x56)", "1x64x56x56 -> 64", convRelu([]int{1, 64, 56, 56}, 64, 1, 1, 0)},
	{"ResNet-50 3x3 64+Relu (56x56)", "1x64x56x56 -> 64", convRelu([]int{1, 64, 56, 56}, 64, 3, 1, 1)},
	{"ResNet-50 3x3 s2 128+Relu (56->28)", "1x128x56x56 -> 128", convRelu([]int{1, 128, 56, 56}, 128, 3, 2, 1)},
	{"ResNet-50 3x3 s2 256+Relu (28->14)", "1x256x28x28 -> 256", convRelu([]int{1, 256, 28, 28}, 256, 3, 2, 1)},
	{"ResNet-50 3x3 s2 512+Relu (14->7)", "1x512x14x14 -> 512", convRelu([]int{1, 512, 14, 14}, 512, 3, 2, 1)},
	{"ResNet-50 3x3 512+Relu (7x7)", "1x512x7x7 -> 512", convRelu([]int{1, 512, 7, 7}, 512, 3, 1, 1)},
	{"ResNet-50 3x3 128+Relu (28x28)", "1x128x28x28 -> 128", convRelu([]int{1, 128, 28, 28}, 128, 3, 1, 1)},
	{"ResNet-18 3x3 64+Relu (16x16, DETR backbone)", "1x64x16x16 -> 64", convRelu([]int{1, 64, 16, 16}, 64, 3, 1, 1)},
	{"ResNet-18 3x3 s2 32->64+Relu (32->16)", "1x32x32x32 -> 64", convRelu([]int{1, 32, 32, 32}, 64, 3, 2, 1)},
	{"ResNet-18 3x3 32+Relu (32x32)", "1x32x32x32 -> 32", convRelu([]int{1, 32, 32, 32}, 32, 3, 1, 1)},
	{"ResNet-18 3x3 s2 64->128+Relu (16->8)", "1x64x16x16 -> 128", convRelu([]int{1, 64, 16, 16}, 128, 3, 2, 1)},
	{"Inception-A 5x5 p2+Relu (11x11)", "1x24x11x11 -> 32", convRelu([]int{1, 24, 11, 11}, 32, 5, 1, 2)},
	{"SqueezeNet classifier 1x1+Relu (13x13)", "1x512x13x13 -> 1000", convRelu([]int{1, 512, 13, 13}, 1000, 1, 1, 0)},
	{"YOLO 1x1 16->32+SiLU (104x104)", "1x16x104x104 -> 32", convSiLU([]int{1, 16, 104, 104}, 32, 1, 1, 1)},
	{"YOLO 1x1 32->16+SiLU (104x104)", "1x32x104x104 -> 16", convSiLU([]int{1, 32, 104, 104}, 16, 1, 1, 1)},
	{"YOLO 1x1 16->16+SiLU (104x104)", "1x16x104x104 -> 16", convSiLU([]int{1, 16, 104, 104}, 16, 1, 1, 1)},
	{"YOLO depthwise 3x3 s2+SiLU (208x208)", "1x16x208x208", convSiLU([]int{1, 16, 208, 208}, 16, 3, 2, 16)},
	{"MBv2 stem 3x3 s2+Relu6", "1x3x224x224 -> 32", convRelu6([]int{1, 3, 224, 224}, 32, 3, 2, 1)},
	{"DepthwiseConv 3x3", "1x96x56x56", convCase([]int{1, 96, 56, 56}, 96, 3, 1, 1, 96, 1)},
	{"DepthwiseConv 5x5", "1x96x56x56", convCase([]int{1, 96, 56, 56}, 96, 5, 1, 2, 96, 1)},
	{"DepthwiseConv 7x7", "1x96x56x56", convCase([]int{1, 96, 56, 56}, 96, 7, 1, 3, 96, 1)},
	{"DepthwiseConv 3x3 s2", "1x96x112x112", convCase([]int{1, 96, 112, 112}, 96, 3, 2, 1, 96, 1)},
	{"GroupConv g4 3x3", "1x128x28x28 -> 128", convCase([]int{1, 128, 28, 28}, 128, 3, 1, 1, 4, 1)},
	{"GroupConv g32 3x3", "1x128x28x28 -> 128", convCase([]int{1, 128, 28, 28}, 128, 3, 1, 1, 32, 1)},
	{"GroupConv g32 3x3 (256ch)", "1x256x56x56 -> 256", convCase([]int{1, 256, 56, 56}, 256, 3, 1, 1, 32, 1)},
	{"DilatedConv 3x3 d2", "1x64x56x56 -> 64", convCase([]int{1, 64, 56, 56}, 64, 3, 1, 2, 1, 2)},
	{"Conv 3x3 s2", "1x64x56x56 -> 128", convCase([]int{1, 64, 56, 56}, 128, 3, 2, 1, 1, 1)},

	// ---------- resize / movement ----------
	{"Resize nearest 2x", "1x64x56x56", resize("nearest")},
	{"Resize linear 2x", "1x64x56x56", resize("linear")},
	{"Resize cubic 2x", "1x64x56x56", resize("cubic")},
	{"DepthToSpace b2 CRD", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("DepthToSpace", vs(x), aI("blocksize", 2), aS("mode", "CRD")), graph.Float)
		return b
	}},
	{"SpaceToDepth b2", "1x64x112x112", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 112, 112)
		b.out(b.op("SpaceToDepth", vs(x), aI("blocksize", 2)), graph.Float)
		return b
	}},
	{"Transpose 0213", "1x197x12x64", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 12, 64)
		b.out(b.op("Transpose", vs(x), aIs("perm", 0, 2, 1, 3)), graph.Float)
		return b
	}},
	{"Transpose 0231 (NCHW->NHWC)", "1x64x112x112", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 112, 112)
		b.out(b.op("Transpose", vs(x), aIs("perm", 0, 2, 3, 1)), graph.Float)
		return b
	}},
	{"ChannelShuffle reshape-transpose-reshape", "1x128x28x28 (4x32)", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 128, 28, 28)
		r := b.op("Reshape", vs(x, b.i64(1, 4, 32, 28, 28)))
		t := b.op("Transpose", vs(r), aIs("perm", 0, 2, 1, 3, 4))
		b.out(b.op("Reshape", vs(t, b.i64(1, 128, 28, 28))), graph.Float)
		return b
	}},
	{"ChannelShuffle big", "1x232x56x56 (2x116)", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 232, 56, 56)
		r := b.op("Reshape", vs(x, b.i64(1, 2, 116, 56, 56)))
		t := b.op("Transpose", vs(r), aIs("perm", 0, 2, 1, 3, 4))
		b.out(b.op("Reshape", vs(t, b.i64(1, 232, 56, 56))), graph.Float)
		return b
	}},
	{"Pad reflect 3", "1x64x56x56", pad("reflect", 3)},
	{"Pad constant 1", "1x64x56x56", pad("constant", 1)},
	{"Pad edge 1", "1x64x56x56", pad("edge", 1)},
	{"Slice channels 64:192", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Slice", vs(x, b.i64(64), b.i64(192), b.i64(1))), graph.Float)
		return b
	}},
	{"Slice ::2,::2 (Focus)", "1x64x112x112", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 112, 112)
		b.out(b.op("Slice", vs(x, b.i64(0, 0), b.i64(112, 112), b.i64(2, 3), b.i64(2, 2))), graph.Float)
		return b
	}},
	{"Split 2 on C", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		o := b.opN("Split", 2, vs(x, b.i64(128, 128)), aI("axis", 1))
		b.out(o[0], graph.Float)
		b.out(o[1], graph.Float)
		return b
	}},
	{"Concat 2 on C", "2x 1x128x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 128, 56, 56)
		y := b.in("y", 1, 128, 56, 56)
		b.out(b.op("Concat", vs(x, y), aI("axis", 1)), graph.Float)
		return b
	}},
	{"Concat 4 on last axis", "4x 1x197x192", func() *mb {
		b := newMB(13)
		var xs []*graph.Value
		for _, n := range []string{"a", "b", "c", "d"} {
			xs = append(xs, b.in(n, 1, 197, 192))
		}
		b.out(b.op("Concat", xs, aI("axis", -1)), graph.Float)
		return b
	}},
	{"Gather embedding", "30522x768, idx 1x128", func() *mb {
		b := newMB(13)
		idx := graph.NewTensor(graph.Int64, []int{1, 128})
		for i := range idx.Int64s() {
			idx.Int64s()[i] = int64(b.rng.IntN(30522))
		}
		x := b.inT("ids", idx)
		b.out(b.op("Gather", vs(b.w(0.02, 30522, 768), x), aI("axis", 0)), graph.Float)
		return b
	}},
	{"GatherElements axis1", "1x256x3136 idx 1x256x1000", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 3136)
		idx := graph.NewTensor(graph.Int64, []int{1, 256, 1000})
		for i := range idx.Int64s() {
			idx.Int64s()[i] = int64(b.rng.IntN(256))
		}
		b.out(b.op("GatherElements", vs(x, b.inT("idx", idx)), aI("axis", 1)), graph.Float)
		return b
	}},
	{"Expand 1x64x1x1 -> 56x56", "1x64x1x1", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 1, 1)
		b.out(b.op("Expand", vs(x, b.i64(1, 64, 56, 56))), graph.Float)
		return b
	}},
	{"Expand mask 1x1x1x197 -> 1x12x197x197", "1x1x1x197", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 1, 1, 197)
		b.out(b.op("Expand", vs(x, b.i64(1, 12, 197, 197))), graph.Float)
		return b
	}},
	{"Tile 1,1,2,2", "1x64x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 56, 56)
		b.out(b.op("Tile", vs(x, b.i64(1, 1, 2, 2))), graph.Float)
		return b
	}},
	{"Tile 1,4,1,1", "1x64x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 56, 56)
		b.out(b.op("Tile", vs(x, b.i64(1, 4, 1, 1))), graph.Float)
		return b
	}},

	// ---------- normalization ----------
	{"GroupNormalization-18 (32 groups)", "1x64x56x56", func() *mb {
		b := newMB(18)
		x := b.in("x", 1, 64, 56, 56)
		b.out(b.op("GroupNormalization", vs(x, b.w(1, 32), b.w(0.1, 32)), aI("num_groups", 32), aF("epsilon", 1e-5)), graph.Float)
		return b
	}},
	{"GroupNormalization-21 (32 groups)", "1x64x56x56", func() *mb {
		b := newMB(21)
		x := b.in("x", 1, 64, 56, 56)
		b.out(b.op("GroupNormalization", vs(x, b.w(1, 64), b.w(0.1, 64)), aI("num_groups", 32), aF("epsilon", 1e-5)), graph.Float)
		return b
	}},
	{"GroupNorm as exported (Reshape+InstanceNorm+Reshape+Mul+Add)", "1x64x56x56 g32", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 64, 56, 56)
		r := b.op("Reshape", vs(x, b.i64(1, 32, -1)))
		ones := make([]float32, 32)
		for i := range ones {
			ones[i] = 1
		}
		in := b.op("InstanceNormalization", vs(r, b.fc([]int{32}, ones), b.fc([]int{32}, make([]float32, 32))), aF("epsilon", 1e-5))
		r2 := b.op("Reshape", vs(in, b.i64(1, 64, 56, 56)))
		y := b.op("Add", vs(b.op("Mul", vs(r2, b.w(1, 64, 1, 1))), b.w(0.1, 64, 1, 1)))
		b.out(y, graph.Float)
		return b
	}},
	{"InstanceNormalization", "1x64x56x56", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 64, 56, 56)
		b.out(b.op("InstanceNormalization", vs(x, b.w(1, 64), b.w(0.1, 64)), aF("epsilon", 1e-5)), graph.Float)
		return b
	}},
	{"LayerNormalization last dim", "1x197x768", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 197, 768)
		b.out(b.op("LayerNormalization", vs(x, b.w(1, 768), b.w(0.1, 768)), aI("axis", -1), aF("epsilon", 1e-5)), graph.Float)
		return b
	}},
	{"LayerNormalization short rows (Swin stage 1)", "1x256x48", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 256, 48)
		b.out(b.op("LayerNormalization", vs(x, b.w(1, 48), b.w(0.1, 48)), aI("axis", -1), aF("epsilon", 1e-5)), graph.Float)
		return b
	}},
	{"Transpose Swin q, k, v split (2,0,3,1,4)", "16x16x3x3x16", func() *mb {
		b := newMB(17)
		x := b.in("x", 16, 16, 3, 3, 16)
		b.out(b.op("Transpose", vs(x), aIs("perm", 2, 0, 3, 1, 4)), graph.Float)
		return b
	}},
	{"LayerNorm decomposed (ReduceMean/Sub/Pow/Sqrt/Div)", "1x197x768", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 768)
		m := b.op("ReduceMean", vs(x), aIs("axes", -1))
		d := b.op("Sub", vs(x, m))
		v := b.op("ReduceMean", vs(b.op("Pow", vs(d, b.scalar(2)))), aIs("axes", -1))
		s := b.op("Sqrt", vs(b.op("Add", vs(v, b.scalar(1e-5)))))
		y := b.op("Add", vs(b.op("Mul", vs(b.op("Div", vs(d, s)), b.w(1, 768))), b.w(0.1, 768)))
		b.out(y, graph.Float)
		return b
	}},
	{"BatchNormalization standalone", "1x64x112x112", func() *mb {
		b := newMB(15)
		x := b.in("x", 1, 64, 112, 112)
		v := b.w(0.1, 64)
		vv := v.Const.Float32s()
		for i := range vv {
			vv[i] = 1 + float32(math.Abs(float64(vv[i])))
		}
		b.out(b.op("BatchNormalization", vs(x, b.w(1, 64), b.w(0.1, 64), b.w(0.1, 64), v)), graph.Float)
		return b
	}},
	{"LpNormalization L2 axis1", "1x2048x196", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 2048, 196)
		b.out(b.op("LpNormalization", vs(x), aI("axis", 1), aI("p", 2)), graph.Float)
		return b
	}},

	// ---------- transformer ----------
	{"Softmax last axis", "1x12x197x197", softmax(1, 12, 197, 197)},
	{"Softmax axis 1 (non-last)", "1x80x8400", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 80, 8400)
		b.out(b.op("Softmax", vs(x), aI("axis", 1)), graph.Float)
		return b
	}},
	{"LogSoftmax last axis", "1x1500x512", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 1500, 512)
		b.out(b.op("LogSoftmax", vs(x), aI("axis", -1)), graph.Float)
		return b
	}},
	{"MatMul batched QK^T", "1x12x197x64 @ 1x12x64x197", func() *mb {
		b := newMB(13)
		q := b.in("q", 1, 12, 197, 64)
		k := b.in("k", 1, 12, 64, 197)
		b.out(b.op("MatMul", vs(q, k)), graph.Float)
		return b
	}},
	{"MatMul batched AV", "1x12x197x197 @ 1x12x197x64", func() *mb {
		b := newMB(13)
		q := b.in("a", 1, 12, 197, 197)
		k := b.in("v", 1, 12, 197, 64)
		b.out(b.op("MatMul", vs(q, k)), graph.Float)
		return b
	}},
	{"MatMul x@W FFN", "1x197x768 @ 768x3072", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 768)
		b.out(b.op("MatMul", vs(x, b.w(0.036, 768, 3072))), graph.Float)
		return b
	}},
	{"Gemm 1x768 -> 3072 transB", "1x768, W 3072x768", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 768)
		b.out(b.op("Gemm", vs(x, b.w(0.036, 3072, 768), b.w(0.05, 3072)), aI("transB", 1)), graph.Float)
		return b
	}},
	{"Gemm+Relu 8x13 -> 64 -> 16 (DLRM bottom MLP)", "8x13", func() *mb {
		b := newMB(13)
		x := b.in("x", 8, 13)
		h := b.op("Relu", vs(b.op("Gemm", vs(x, b.w(0.27, 64, 13), b.w(0.05, 64)), aI("transB", 1))))
		b.out(b.op("Relu", vs(b.op("Gemm", vs(h, b.w(0.12, 16, 64), b.w(0.05, 16)), aI("transB", 1)))), graph.Float)
		return b
	}},
	{"DLRM interaction (Concat of Unsqueezes, MatMul with its Transpose, Gather)", "5 x 8x16", func() *mb {
		b := newMB(13)
		var vecs []*graph.Value
		for i := range 5 {
			vecs = append(vecs, b.op("Unsqueeze", vs(b.in(fmt.Sprintf("v%d", i), 8, 16), b.i64(1))))
		}
		t := b.op("Concat", vecs, aI("axis", 1))
		z := b.op("Reshape", vs(b.op("MatMul", vs(t, b.op("Transpose", vs(t), aIs("perm", 0, 2, 1)))), b.i64(8, 25)))
		b.out(b.op("Gather", vs(z, b.i64(5, 10, 11, 15, 16, 17, 20, 21, 22, 23)), aI("axis", 1)), graph.Float)
		return b
	}},
	{"Gemm 1x2048 -> 1000 (classifier)", "1x2048", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 2048)
		b.out(b.op("Gemm", vs(x, b.w(0.022, 1000, 2048), b.w(0.05, 1000)), aI("transB", 1)), graph.Float)
		return b
	}},
	{"MatMul GEMV 1x1x768 @ 768x3072 (decoder step)", "1x1x768", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 1, 768)
		b.out(b.op("MatMul", vs(x, b.w(0.036, 768, 3072))), graph.Float)
		return b
	}},
	{"Einsum bhqd,bhkd->bhqk", "1x12x197x64 x2", func() *mb {
		b := newMB(13)
		q := b.in("q", 1, 12, 197, 64)
		k := b.in("k", 1, 12, 197, 64)
		b.out(b.op("Einsum", vs(q, k), aS("equation", "bhqd,bhkd->bhqk")), graph.Float)
		return b
	}},
	{"Einsum bhqk,bhkd->bhqd", "1x12x197x197, 1x12x197x64", func() *mb {
		b := newMB(13)
		q := b.in("a", 1, 12, 197, 197)
		k := b.in("v", 1, 12, 197, 64)
		b.out(b.op("Einsum", vs(q, k), aS("equation", "bhqk,bhkd->bhqd")), graph.Float)
		return b
	}},
	{"Gelu erf pattern", "1x197x3072", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 3072)
		e := b.op("Erf", vs(b.op("Div", vs(x, b.scalar(math.Sqrt2)))))
		y := b.op("Mul", vs(b.op("Mul", vs(x, b.op("Add", vs(e, b.scalar(1))))), b.scalar(0.5)))
		b.out(y, graph.Float)
		return b
	}},
	{"Gelu-20 op", "1x197x3072", unary("Gelu", 20, 1, 197, 3072)},
	{"Gelu tanh pattern", "1x197x3072", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 3072)
		x3 := b.op("Mul", vs(b.op("Pow", vs(x, b.scalar(3))), b.scalar(0.044715)))
		t := b.op("Tanh", vs(b.op("Mul", vs(b.op("Add", vs(x, x3)), b.scalar(0.7978845608)))))
		y := b.op("Mul", vs(b.op("Mul", vs(x, b.scalar(0.5))), b.op("Add", vs(t, b.scalar(1)))))
		b.out(y, graph.Float)
		return b
	}},
	{"Erf alone", "1x197x3072", unary("Erf", 13, 1, 197, 3072)},
	{"Attention subgraph (MatMul/Div/Add mask/Softmax/MatMul)", "1x12x197x64", func() *mb {
		b := newMB(13)
		q := b.in("q", 1, 12, 197, 64)
		k := b.in("k", 1, 12, 64, 197)
		v := b.in("v", 1, 12, 197, 64)
		s := b.op("Div", vs(b.op("MatMul", vs(q, k)), b.scalar(8)))
		s = b.op("Add", vs(s, b.w(1, 1, 1, 1, 197)))
		p := b.op("Softmax", vs(s), aI("axis", -1))
		b.out(b.op("MatMul", vs(p, v)), graph.Float)
		return b
	}},
	{"Attention subgraph, small ViT (MatMul/Mul/Softmax/MatMul)", "1x3x65x32", func() *mb {
		b := newMB(13)
		q := b.in("q", 1, 3, 65, 32)
		k := b.in("k", 1, 3, 32, 65)
		v := b.in("v", 1, 3, 65, 32)
		p := b.op("Softmax", vs(b.op("Mul", vs(b.op("MatMul", vs(q, k)), b.scalar(0.1768)))), aI("axis", -1))
		b.out(b.op("MatMul", vs(p, v)), graph.Float)
		return b
	}},
	{"Swin window attention (q k^T + bias, Softmax, @ v)", "16 windows x 3 heads x 16x16", func() *mb {
		b := newMB(17)
		q, k, v := b.in("q", 16, 3, 16, 16), b.in("k", 16, 3, 16, 16), b.in("v", 16, 3, 16, 16)
		a := b.op("MatMul", vs(q, b.op("Transpose", vs(k), aIs("perm", 0, 1, 3, 2))))
		a = b.op("Add", vs(a, b.w(0.5, 3, 16, 16)))
		b.out(b.op("MatMul", vs(b.op("Softmax", vs(a), aI("axis", -1)), v)), graph.Float)
		return b
	}},
	{"Swin shifted window attention (bias, Reshape, mask Add, Reshape)", "16 windows x 3 heads x 16x16", func() *mb {
		b := newMB(17)
		q, k, v := b.in("q", 16, 3, 16, 16), b.in("k", 16, 3, 16, 16), b.in("v", 16, 3, 16, 16)
		a := b.op("MatMul", vs(q, b.op("Transpose", vs(k), aIs("perm", 0, 1, 3, 2))))
		a = b.op("Add", vs(a, b.w(0.5, 3, 16, 16)))
		mask := make([]float32, 16*16*16)
		for i := range mask {
			if b.rng.IntN(3) == 0 {
				mask[i] = -100
			}
		}
		a = b.op("Reshape", vs(b.op("Add", vs(b.op("Reshape", vs(a, b.i64(1, 16, 3, 16, 16))), b.fc([]int{1, 16, 1, 16, 16}, mask))), b.i64(16, 3, 16, 16)))
		b.out(b.op("MatMul", vs(b.op("Softmax", vs(a), aI("axis", -1)), v)), graph.Float)
		return b
	}},
	{"MatMul+Add Swin window qkv", "16x16x48 @ 48x144", func() *mb {
		b := newMB(17)
		x := b.in("x", 16, 16, 48)
		b.out(b.op("Add", vs(b.op("MatMul", vs(x, b.w(0.14, 48, 144))), b.w(0.02, 144))), graph.Float)
		return b
	}},
	{"MatMul+Add Swin MLP down", "1x256x192 @ 192x48", func() *mb {
		b := newMB(17)
		x := b.in("x", 1, 256, 192)
		b.out(b.op("Add", vs(b.op("MatMul", vs(x, b.w(0.07, 192, 48))), b.w(0.02, 48))), graph.Float)
		return b
	}},
	{"MatMul+Add small ViT FFN", "1x65x96 @ 96x384", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 65, 96)
		b.out(b.op("Add", vs(b.op("MatMul", vs(x, b.w(0.1, 96, 384))), b.w(0.02, 384))), graph.Float)
		return b
	}},
	{"Where/Less/Cast mix", "1x12x197x197", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 12, 197, 197)
		c := b.op("Less", vs(x, b.scalar(0.5)))
		y := b.op("Where", vs(c, x, b.scalar(-1e4)))
		z := b.op("Cast", vs(c), aI("to", int64(graph.Float)))
		b.out(b.op("Add", vs(y, z)), graph.Float)
		return b
	}},
	{"Equal/Where int64 mask -> float", "mask 1x128 -> 1x1x128x128", func() *mb {
		b := newMB(13)
		m := graph.NewTensor(graph.Int64, []int{1, 1, 128, 128})
		for i := range m.Int64s() {
			if b.rng.IntN(4) > 0 {
				m.Int64s()[i] = 1
			}
		}
		mv := b.inT("mask", m)
		x := b.in("x", 1, 12, 128, 128)
		c := b.op("Equal", vs(mv, b.i64scalar(0)))
		y := b.op("Where", vs(c, b.scalar(-3.4e38), x))
		b.out(y, graph.Float)
		return b
	}},
	{"Cast float->int64->float", "1x64x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 56, 56)
		y := b.op("Cast", vs(b.op("Cast", vs(b.op("Mul", vs(x, b.scalar(100)))), aI("to", int64(graph.Int64)))), aI("to", int64(graph.Float)))
		b.out(y, graph.Float)
		return b
	}},
	{"CumSum axis 1", "1x197x768", func() *mb {
		b := newMB(14)
		x := b.in("x", 1, 197, 768)
		b.out(b.op("CumSum", vs(x, b.i64scalar(1))), graph.Float)
		return b
	}},
	{"CumSum last axis", "1x197x768", func() *mb {
		b := newMB(14)
		x := b.in("x", 1, 197, 768)
		b.out(b.op("CumSum", vs(x, b.i64scalar(-1))), graph.Float)
		return b
	}},

	// ---------- reductions / pooling ----------
	{"ReduceMean axes 2,3", "1x256x56x56", reduce("ReduceMean", []int64{2, 3}, 1, 1, 256, 56, 56)},
	{"ReduceSum axis 1", "1x256x56x56", reduce("ReduceSum", []int64{1}, 1, 1, 256, 56, 56)},
	{"ReduceMean last axis", "1x197x768", reduce("ReduceMean", []int64{-1}, 1, 1, 197, 768)},
	{"ReduceMax axis 1", "1x256x56x56", reduce("ReduceMax", []int64{1}, 1, 1, 256, 56, 56)},
	{"ReduceSum axis 1 of 3D (middle)", "1x1500x512 axis1", reduce("ReduceSum", []int64{1}, 0, 1, 1500, 512)},
	{"ReduceL2 last axis", "1x197x768", reduce("ReduceL2", []int64{-1}, 1, 1, 197, 768)},
	{"AveragePool 3x3 s1 p1 excl-pad", "1x64x56x56", pool("AveragePool", []int{1, 64, 56, 56}, 3, 1, 1, aI("count_include_pad", 0))},
	{"AveragePool 3x3 s1 p1 (Inception 11x11)", "1x128x11x11", pool("AveragePool", []int{1, 128, 11, 11}, 3, 1, 1, aI("count_include_pad", 1))},
	{"AveragePool 3x3 s1 p1 (Inception 5x5)", "1x288x5x5", pool("AveragePool", []int{1, 288, 5, 5}, 3, 1, 1, aI("count_include_pad", 1))},
	{"LRN size 5 (GoogLeNet 1x64x56x56)", "1x64x56x56", lrn(1, 64, 56, 56)},
	{"LRN size 5 (AlexNet 1x96x55x55)", "1x96x55x55", lrn(1, 96, 55, 55)},
	{"LRN size 5 (GoogLeNet 1x192x56x56)", "1x192x56x56", lrn(1, 192, 56, 56)},
	{"MaxPool 3x3 s1 p1 (CenterNet heatmap peaks)", "1x80x128x128", pool("MaxPool", []int{1, 80, 128, 128}, 3, 1, 1)},
	{"MaxPool 3x3 s1 p1 (GoogLeNet 7x7)", "1x832x7x7", pool("MaxPool", []int{1, 832, 7, 7}, 3, 1, 1)},
	{"MaxPool 3x3 s1 p1 (GoogLeNet 14x14)", "1x528x14x14", pool("MaxPool", []int{1, 528, 14, 14}, 3, 1, 1)},
	{"MaxPool 3x3 s1 p1 (GoogLeNet 28x28)", "1x256x28x28", pool("MaxPool", []int{1, 256, 28, 28}, 3, 1, 1)},
	{"MaxPool 3x3 s2 (Inception 51x51)", "1x32x51x51", pool("MaxPool", []int{1, 32, 51, 51}, 3, 2, 0)},
	{"MaxPool 3x3 s2 (Inception 11x11)", "1x144x11x11", pool("MaxPool", []int{1, 144, 11, 11}, 3, 2, 0)},
	{"AveragePool 2x2 s2", "1x256x56x56", pool("AveragePool", []int{1, 256, 56, 56}, 2, 2, 0)},
	{"GlobalAveragePool", "1x2048x7x7", unary("GlobalAveragePool", 13, 1, 2048, 7, 7)},
	{"GlobalAveragePool large", "1x256x56x56", unary("GlobalAveragePool", 13, 1, 256, 56, 56)},
	{"GlobalMaxPool", "1x256x56x56", unary("GlobalMaxPool", 13, 1, 256, 56, 56)},
	{"MaxPool 2x2 s2", "1x64x56x56", pool("MaxPool", []int{1, 64, 56, 56}, 2, 2, 0)},
	{"MaxPool 3x3 s2 p1 (ResNet)", "1x64x112x112", pool("MaxPool", []int{1, 64, 112, 112}, 3, 2, 1)},
	{"MaxPool 3x3 s2 ceil (SqueezeNet)", "1x64x111x111", pool("MaxPool", []int{1, 64, 111, 111}, 3, 2, 0, aI("ceil_mode", 1))},
	{"MaxPool 3x3 s2 ceil (SqueezeNet 27x27)", "1x256x27x27", pool("MaxPool", []int{1, 256, 27, 27}, 3, 2, 0, aI("ceil_mode", 1))},
	{"MaxPool 5x5 s1 p2 (SPPF)", "1x256x20x20", pool("MaxPool", []int{1, 256, 20, 20}, 5, 1, 2)},
	{"ArgMax axis 1", "1x1000x56", argmax(1, 1, 1000, 56)},
	{"ArgMax axis 1 (segmentation)", "1x21x512x512", argmax(1, 1, 21, 512, 512)},
	{"ArgMax last axis", "1x64x8192", argmax(-1, 1, 64, 8192)},
	{"TopK k=5", "1x1000", topk(1000, 5)},
	{"TopK k=100", "1x25200", topk(25200, 100)},
	{"NonMaxSuppression", "1000 boxes, 1 class, max 100", func() *mb {
		b := newMB(13)
		bx := graph.NewTensor(graph.Float, []int{1, 1000, 4})
		d := bx.Float32s()
		for i := 0; i < 1000; i++ {
			x1, y1 := b.rng.Float32()*600, b.rng.Float32()*600
			w, h := 10+b.rng.Float32()*100, 10+b.rng.Float32()*100
			d[4*i], d[4*i+1], d[4*i+2], d[4*i+3] = y1, x1, y1+h, x1+w
		}
		boxes := b.inT("boxes", bx)
		sc := graph.NewTensor(graph.Float, []int{1, 1, 1000})
		for i := range sc.Float32s() {
			sc.Float32s()[i] = b.rng.Float32()
		}
		scores := b.inT("scores", sc)
		o := b.op("NonMaxSuppression", vs(boxes, scores, b.i64(100), b.fc([]int{1}, []float32{0.5}), b.fc([]int{1}, []float32{0.25})))
		b.out(o, graph.Int64)
		return b
	}},
	{"NonMaxSuppression 80 classes", "1x8400 boxes, 80 classes, max 100/class", func() *mb {
		b := newMB(13)
		bx := graph.NewTensor(graph.Float, []int{1, 8400, 4})
		d := bx.Float32s()
		for i := 0; i < 8400; i++ {
			x1, y1 := b.rng.Float32()*600, b.rng.Float32()*600
			w, h := 10+b.rng.Float32()*100, 10+b.rng.Float32()*100
			d[4*i], d[4*i+1], d[4*i+2], d[4*i+3] = y1, x1, y1+h, x1+w
		}
		boxes := b.inT("boxes", bx)
		sc := graph.NewTensor(graph.Float, []int{1, 80, 8400})
		for i := range sc.Float32s() {
			v := b.rng.Float32()
			sc.Float32s()[i] = v * v * v * v // most below threshold, as in a real detector
		}
		scores := b.inT("scores", sc)
		o := b.op("NonMaxSuppression", vs(boxes, scores, b.i64(100), b.fc([]int{1}, []float32{0.5}), b.fc([]int{1}, []float32{0.25})))
		b.out(o, graph.Int64)
		return b
	}},

	// ---------- RNN ----------
	{"GRU seq64 in64 h128", "64x1x64", rnn("GRU", false, 64, 64, 128)},
	{"LSTM seq64 in64 h128", "64x1x64", rnn("LSTM", false, 64, 64, 128)},
	{"LSTM bidirectional seq64 in64 h128", "64x1x64", rnn("LSTM", true, 64, 64, 128)},
	{"LSTM bidirectional seq100 in256 h256", "100x1x256", rnn("LSTM", true, 100, 256, 256)},
	{"DynamicQuantizeLSTM seq64 in64 h128 (quantize_dynamic)", "64x1x64, int8 weights per column", func() *mb {
		const seq, in, hidden = 64, 64, 128
		b := newMB(14)
		x := b.in("x", seq, 1, in)
		codes := func(k int) *graph.Value {
			t := graph.NewTensor(graph.Int8, []int{1, k, 4 * hidden})
			for i, d := 0, t.Data().([]int8); i < len(d); i++ {
				d[i] = int8(b.rng.IntN(255) - 127)
			}
			return b.ct(t)
		}
		scales := make([]float32, 4*hidden)
		for i := range scales {
			scales[i] = 0.001 + 0.0005*float32(b.rng.Float64())
		}
		zp := b.ct(graph.NewTensor(graph.Int8, []int{1, 4 * hidden}))
		y := b.msOp("DynamicQuantizeLSTM", vs(x, codes(in), codes(hidden), b.w(0.1, 1, 8*hidden), nil, nil, nil, nil,
			b.fc([]int{1, 4 * hidden}, scales), zp, b.fc([]int{1, 4 * hidden}, scales), zp), aI("hidden_size", hidden))
		b.out(y, graph.Float)
		return b
	}},

	// ---------- elementwise ----------
	{"Mul broadcast (SE scale)", "1x256x56x56 * 1x256x1x1", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		s := b.in("s", 1, 256, 1, 1)
		b.out(b.op("Mul", vs(x, s)), graph.Float)
		return b
	}},
	{"Add same shape", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		y := b.in("y", 1, 256, 56, 56)
		b.out(b.op("Add", vs(x, y)), graph.Float)
		return b
	}},
	{"Add broadcast middle (1x197x768 + 1x197x1)", "1x197x768", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 768)
		y := b.in("y", 1, 197, 1)
		b.out(b.op("Add", vs(x, y)), graph.Float)
		return b
	}},
	{"Conv 3x3 s2 TF SAME pads 0,0,1,1", "1x64x112x112 -> 128", tfSame(64, 128, 1, "")},
	{"Conv 3x3 s2 auto_pad SAME_UPPER", "1x64x112x112 -> 128", tfSame(64, 128, 1, "SAME_UPPER")},
	{"DepthwiseConv 3x3 s2 TF SAME pads 0,0,1,1", "1x96x112x112", tfSame(96, 96, 96, "")},
	{"MaxPool 3x3 s2 TF SAME pads 0,0,1,1", "1x64x112x112", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 112, 112)
		b.out(b.op("MaxPool", vs(x), aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aIs("pads", 0, 0, 1, 1)), graph.Float)
		return b
	}},
	{"QDQ round trip uint8 (Q then DQ)", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		zp := graph.NewTensor(graph.Uint8, []int{})
		zp.Data().([]uint8)[0] = 128
		z := b.ct(zp)
		b.out(b.op("DequantizeLinear", vs(b.op("QuantizeLinear", vs(x, b.scalar(0.02), z)), b.scalar(0.02), z)), graph.Float)
		return b
	}},
	{"QDQ Conv 3x3 64->64+Relu (56x56, int8 weights per channel)", "1x64x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 56, 56)
		zp := graph.NewTensor(graph.Uint8, []int{})
		zp.Data().([]uint8)[0] = 128
		z := b.ct(zp)
		xq := b.op("DequantizeLinear", vs(b.op("QuantizeLinear", vs(x, b.scalar(0.02), z)), b.scalar(0.02), z))
		wq := graph.NewTensor(graph.Int8, []int{64, 64, 3, 3})
		for i, d := 0, wq.Data().([]int8); i < len(d); i++ {
			d[i] = int8(b.rng.IntN(255) - 127)
		}
		ws := make([]float32, 64)
		for i := range ws {
			ws[i] = 0.001 + 0.001*float32(b.rng.Float64())
		}
		wzp := graph.NewTensor(graph.Int8, []int{64})
		w := b.op("DequantizeLinear", vs(b.ct(wq), b.fc([]int{64}, ws), b.ct(wzp)), aI("axis", 0))
		y := b.op("Relu", vs(b.op("Conv", vs(xq, w, b.w(0.05, 64)), aIs("pads", 1, 1, 1, 1))))
		b.out(b.op("DequantizeLinear", vs(b.op("QuantizeLinear", vs(y, b.scalar(0.05), z)), b.scalar(0.05), z)), graph.Float)
		return b
	}},
	{"QLinearConv 3x3 64->64 (QOperator, 56x56)", "1x64x56x56 uint8, int8 weights per channel", qlinearConv(64, 64, 1, 3, 1, 56)},
	{"QLinearConv depthwise 3x3 (QOperator, 56x56)", "1x144x56x56 uint8", qlinearConv(144, 144, 144, 3, 1, 56)},
	{"QLinearConv 1x1 24->144 (QOperator, 56x56)", "1x24x56x56 uint8", qlinearConv(24, 144, 1, 1, 1, 56)},
	// The rest of a QOperator model's ops (ONNX Runtime's quantizer in its
	// QOperator format): each between a QuantizeLinear and a
	// DequantizeLinear, as the surrounding ops leave them.
	{"QLinearAdd residual (QOperator)", "2 x 1x64x56x56 uint8", qlinearBinary("QLinearAdd")},
	{"QLinearMul (QOperator)", "2 x 1x64x56x56 uint8", qlinearBinary("QLinearMul")},
	{"QLinearSigmoid (QOperator)", "1x64x56x56 uint8", qlinearUnary("QLinearSigmoid")},
	{"QLinearLeakyRelu 0.1 (QOperator)", "1x64x56x56 uint8", qlinearUnary("QLinearLeakyRelu", aF("alpha", 0.1))},
	{"QLinearGlobalAveragePool (QOperator, MobileNet head)", "1x1280x7x7 uint8", func() *mb {
		b := newMB(13)
		xq, z := quantIn(b, 1, 1280, 7, 7)
		y := b.msOp("QLinearGlobalAveragePool", vs(xq, b.scalar(0.02), z, b.scalar(0.01), z), aI("channels_last", 0))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.01), z)), graph.Float)
		return b
	}},
	{"QLinearAveragePool 3x3 s1 p1 (QOperator)", "1x64x56x56 uint8", func() *mb {
		b := newMB(13)
		xq, z := quantIn(b, 1, 64, 56, 56)
		y := b.msOp("QLinearAveragePool", vs(xq, b.scalar(0.02), z, b.scalar(0.02), z), aIs("kernel_shape", 3, 3), aIs("pads", 1, 1, 1, 1), aIs("strides", 1, 1))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.02), z)), graph.Float)
		return b
	}},
	{"QLinearConcat 2 inputs axis 1 (QOperator)", "2 x 1x64x28x28 uint8", func() *mb {
		b := newMB(13)
		aq, z := quantIn(b, 1, 64, 28, 28)
		bq, _ := quantIn(b, 1, 64, 28, 28)
		y := b.msOp("QLinearConcat", vs(b.scalar(0.03), z, aq, b.scalar(0.02), z, bq, b.scalar(0.02), z), aI("axis", 1))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.03), z)), graph.Float)
		return b
	}},
	{"MaxPool uint8 3x3 s2 (QOperator)", "1x64x112x112 uint8", func() *mb {
		b := newMB(13)
		xq, z := quantIn(b, 1, 64, 112, 112)
		y := b.op("MaxPool", vs(xq), aIs("kernel_shape", 3, 3), aIs("pads", 1, 1, 1, 1), aIs("strides", 2, 2))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.02), z)), graph.Float)
		return b
	}},
	{"QLinearMatMul 1x128x768 @ 768x768 (QOperator)", "1x128x768 uint8, int8 weights", func() *mb {
		b := newMB(13)
		aq, z := quantIn(b, 1, 128, 768)
		wq := graph.NewTensor(graph.Int8, []int{768, 768})
		for i, d := 0, wq.Data().([]int8); i < len(d); i++ {
			d[i] = int8(b.rng.IntN(255) - 127)
		}
		y := b.op("QLinearMatMul", vs(aq, b.scalar(0.02), z, b.ct(wq), b.scalar(0.002), b.ct(graph.NewTensor(graph.Int8, []int{})), b.scalar(0.1), z))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.1), z)), graph.Float)
		return b
	}},
	{"GridSample bilinear (flow warp)", "1x64x64x64, grid 1x64x64x2", func() *mb {
		b := newMB(16)
		x := b.in("x", 1, 64, 64, 64)
		g := graph.NewTensor(graph.Float, []int{1, 64, 64, 2})
		for i, d := 0, g.Float32s(); i < len(d); i++ {
			d[i] = float32(b.rng.Float64()*2.2 - 1.1)
		}
		b.out(b.op("GridSample", vs(x, b.inT("grid", g)), aS("mode", "bilinear")), graph.Float)
		return b
	}},
	{"DFT 512 real->complex (audio frames)", "100x512x1", func() *mb {
		b := newMB(17)
		x := b.in("x", 100, 512, 1)
		b.out(b.op("DFT", vs(x), aI("axis", 1), aI("onesided", 1)), graph.Float)
		return b
	}},
	{"Elu", "1x256x56x56", unary("Elu", 13, 1, 256, 56, 56)},
	{"Selu", "1x256x56x56", unary("Selu", 13, 1, 256, 56, 56)},
	{"HardSigmoid", "1x256x56x56", unary("HardSigmoid", 13, 1, 256, 56, 56)},
	{"Reciprocal", "1x256x56x56", unary("Reciprocal", 13, 1, 256, 56, 56)},
	{"Log", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Log", vs(b.op("Abs", vs(x)))), graph.Float)
		return b
	}},
	{"Clip 0..6 (inputs)", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Clip", vs(x, b.scalar(0), b.scalar(6))), graph.Float)
		return b
	}},
	{"Sum of 3", "1x256x56x56", func() *mb {
		b := newMB(13)
		x, y, z := b.in("x", 1, 256, 56, 56), b.in("y", 1, 256, 56, 56), b.in("z", 1, 256, 56, 56)
		b.out(b.op("Sum", vs(x, y, z)), graph.Float)
		return b
	}},
	{"Max of 2 (elementwise)", "1x256x56x56", func() *mb {
		b := newMB(13)
		x, y := b.in("x", 1, 256, 56, 56), b.in("y", 1, 256, 56, 56)
		b.out(b.op("Max", vs(x, y)), graph.Float)
		return b
	}},
	{"Conv3D 3x3x3 (video)", "1x32x8x28x28 -> 32", vol3("Conv", []int{1, 32, 8, 28, 28}, 32, [3]int{3, 3, 3}, [3]int{1, 1, 1}, [3]int{1, 1, 1})},
	{"Conv3D 3x7x7 s1x2x2 (3D ResNet stem)", "1x3x16x112x112 -> 64", vol3("Conv", []int{1, 3, 16, 112, 112}, 64, [3]int{3, 7, 7}, [3]int{1, 2, 2}, [3]int{1, 3, 3})},
	{"Conv3D 1x1x1", "1x64x8x28x28 -> 128", vol3("Conv", []int{1, 64, 8, 28, 28}, 128, [3]int{1, 1, 1}, [3]int{1, 1, 1}, [3]int{})},
	{"Conv3D 3x3x3 s2", "1x64x8x28x28 -> 128", vol3("Conv", []int{1, 64, 8, 28, 28}, 128, [3]int{3, 3, 3}, [3]int{2, 2, 2}, [3]int{1, 1, 1})},
	{"MaxPool3D 2x2x2 s2", "1x64x8x28x28", vol3("MaxPool", []int{1, 64, 8, 28, 28}, 0, [3]int{2, 2, 2}, [3]int{2, 2, 2}, [3]int{})},
	{"AveragePool3D 2x2x2 s2", "1x64x8x28x28", vol3("AveragePool", []int{1, 64, 8, 28, 28}, 0, [3]int{2, 2, 2}, [3]int{2, 2, 2}, [3]int{})},
	{"MaxPool3D 3x3x3 s2 p1 (3D ResNet stem)", "1x64x16x56x56", vol3("MaxPool", []int{1, 64, 16, 56, 56}, 0, [3]int{3, 3, 3}, [3]int{2, 2, 2}, [3]int{1, 1, 1})},
	{"MaxPool3D 3x3x3 s1 p1 (I3D branch)", "1x192x8x28x28", vol3("MaxPool", []int{1, 192, 8, 28, 28}, 0, [3]int{3, 3, 3}, [3]int{1, 1, 1}, [3]int{1, 1, 1})},
	{"MaxPool3D 1x3x3 s(1,2,2) p(0,1,1)", "1x64x8x56x56", vol3("MaxPool", []int{1, 64, 8, 56, 56}, 0, [3]int{1, 3, 3}, [3]int{1, 2, 2}, [3]int{0, 1, 1})},
	{"Upsample nearest 2x (opset 9)", "1x128x52x52", func() *mb {
		b := newMB(9)
		x := b.in("x", 1, 128, 52, 52)
		b.out(b.op("Upsample", vs(x, b.fc([]int{4}, []float32{1, 1, 2, 2})), aS("mode", "nearest")), graph.Float)
		return b
	}},
	{"ReduceLogSumExp last axis", "1x1500x512", reduce("ReduceLogSumExp", []int64{-1}, 1, 1, 1500, 512)},
	{"Hardmax last axis", "1x1500x512", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 1500, 512)
		b.out(b.op("Hardmax", vs(x), aI("axis", -1)), graph.Float)
		return b
	}},
	{"ScatterND rows (KV cache update)", "1x4x256x64 <- 1 row", func() *mb {
		b := newMB(16)
		x := b.in("x", 256, 256)
		idx := graph.NewTensor(graph.Int64, []int{1, 1})
		idx.Int64s()[0] = 100
		u := b.in("u", 1, 256)
		b.out(b.op("ScatterND", vs(x, b.inT("i", idx), u)), graph.Float)
		return b
	}},
	{"GatherND rows (detector top-k boxes)", "1x8400x84 <- 300x2", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 8400, 84)
		idx := graph.NewTensor(graph.Int64, []int{300, 2})
		for i := 0; i < 300; i++ {
			idx.Int64s()[2*i+1] = int64(b.rng.IntN(8400))
		}
		b.out(b.op("GatherND", vs(x, b.inT("i", idx))), graph.Float)
		return b
	}},
	{"ScatterElements axis 1 (position write)", "1x64x4096 <- 1x1x64", func() *mb {
		b := newMB(16)
		x := b.in("x", 1, 64, 4096)
		idx := graph.NewTensor(graph.Int64, []int{1, 1, 64})
		for i := range idx.Int64s() {
			idx.Int64s()[i] = int64(b.rng.IntN(64))
		}
		u := b.in("u", 1, 1, 64)
		b.out(b.op("ScatterElements", vs(x, b.inT("i", idx), u), aI("axis", 1)), graph.Float)
		return b
	}},
	{"RoiAlign 7x7 (Faster R-CNN box head)", "1x256x50x50, 100 rois", func() *mb {
		b := newMB(16)
		x := b.in("x", 1, 256, 50, 50)
		rois := graph.NewTensor(graph.Float, []int{100, 4})
		for i := 0; i < 100; i++ {
			x0, y0 := float32(b.rng.IntN(300)), float32(b.rng.IntN(300))
			copy(rois.Float32s()[4*i:], []float32{x0, y0, x0 + 20 + float32(b.rng.IntN(100)), y0 + 20 + float32(b.rng.IntN(100))})
		}
		bi := graph.NewTensor(graph.Int64, []int{100})
		b.out(b.op("RoiAlign", vs(x, b.inT("rois", rois), b.inT("bi", bi)), aI("output_height", 7), aI("output_width", 7),
			aI("sampling_ratio", 2), aF("spatial_scale", 0.125)), graph.Float)
		return b
	}},
	// Families the zoo has no member of: vocoders (HiFi-GAN's upsampling
	// and dilated residual convolutions), Swin's windows and shifts,
	// Conformer's GLU and long depthwise convolution, diffusion UNets,
	// PointNet, recommendation models, language-model heads, and the
	// dynamically quantized transformers ORT's quantize_dynamic writes.
	{"ConvTranspose1d k16 s8 p4 (HiFi-GAN upsample)", "1x512x32 -> 256x256", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 512, 32)
		y := b.op("ConvTranspose", vs(x, b.w(0.01, 512, 256, 16), b.w(0.05, 256)), aIs("kernel_shape", 16), aIs("strides", 8), aIs("pads", 4, 4))
		b.out(y, graph.Float)
		return b
	}},
	{"Conv1d k3 d5 + LeakyRelu (HiFi-GAN resblock)", "1x128x2048", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 128, 2048)
		y := b.op("Conv", vs(b.op("LeakyRelu", vs(x), aF("alpha", 0.1)), b.he(128*3, 128, 128, 3), b.w(0.05, 128)),
			aIs("kernel_shape", 3), aIs("dilations", 5), aIs("pads", 5, 5))
		b.out(b.op("Add", vs(y, x)), graph.Float)
		return b
	}},
	{"Conv1d k7 p3 (vocoder post)", "1x32x8192 -> 1", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 32, 8192)
		y := b.op("Conv", vs(x, b.he(32*7, 1, 32, 7), b.w(0.05, 1)), aIs("kernel_shape", 7), aIs("pads", 3, 3))
		b.out(b.op("Tanh", vs(y)), graph.Float)
		return b
	}},
	{"Swin window partition (Reshape/6-D Transpose/Reshape)", "1x56x56x96 -> 64x49x96", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 56, 56, 96)
		y := b.op("Reshape", vs(x, b.i64(1, 8, 7, 8, 7, 96)))
		y = b.op("Transpose", vs(y), aIs("perm", 0, 1, 3, 2, 4, 5))
		b.out(b.op("Reshape", vs(y, b.i64(64, 49, 96))), graph.Float)
		return b
	}},
	{"Swin cyclic shift (Slice/Concat on H and W)", "1x56x56x96 shift 3", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 56, 56, 96)
		roll := func(v *graph.Value, axis int64) *graph.Value {
			head := b.op("Slice", vs(v, b.i64(3), b.i64(56), b.i64(axis)))
			tail := b.op("Slice", vs(v, b.i64(0), b.i64(3), b.i64(axis)))
			return b.op("Concat", vs(head, tail), aI("axis", axis))
		}
		b.out(roll(roll(x, 1), 2), graph.Float)
		return b
	}},
	{"GLU (Split/Sigmoid/Mul, Conformer)", "1x512x400 -> 256", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 512, 400)
		h := b.opN("Split", 2, vs(x), aI("axis", 1))
		b.out(b.op("Mul", vs(h[0], b.op("Sigmoid", vs(h[1])))), graph.Float)
		return b
	}},
	{"Depthwise Conv1d k31 (Conformer)", "1x256x400", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 400)
		y := b.op("Conv", vs(x, b.he(31, 256, 1, 31), b.w(0.05, 256)), aIs("kernel_shape", 31), aIs("pads", 15, 15), aI("group", 256))
		b.out(y, graph.Float)
		return b
	}},
	{"GroupNorm+SiLU (diffusion UNet)", "1x320x64x64", func() *mb {
		b := newMB(18)
		x := b.in("x", 1, 320, 64, 64)
		y := b.op("GroupNormalization", vs(x, b.w(1, 32), b.w(0.1, 32)), aI("num_groups", 32), aF("epsilon", 1e-5))
		b.out(b.op("Mul", vs(y, b.op("Sigmoid", vs(y)))), graph.Float)
		return b
	}},
	{"Softmax 1024-wide rows (diffusion self-attention)", "1x8x1024x1024", softmax(1, 8, 1024, 1024)},
	{"LayerNorm channels first (ReduceMean axis 1, ConvNeXt/Segformer)", "1x96x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 96, 56, 56)
		m := b.op("ReduceMean", vs(x), aIs("axes", 1))
		d := b.op("Sub", vs(x, m))
		v := b.op("ReduceMean", vs(b.op("Pow", vs(d, b.scalar(2)))), aIs("axes", 1))
		y := b.op("Div", vs(d, b.op("Sqrt", vs(b.op("Add", vs(v, b.scalar(1e-6)))))))
		b.out(b.op("Add", vs(b.op("Mul", vs(y, b.w(1, 96, 1, 1))), b.w(0.1, 96, 1, 1))), graph.Float)
		return b
	}},
	{"PointNet shared MLP + max over points", "1x64x4096 -> 1024, ReduceMax", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 64, 4096)
		y := b.op("Relu", vs(b.op("Conv", vs(x, b.he(64, 1024, 64, 1), b.w(0.05, 1024)), aIs("kernel_shape", 1))))
		b.out(b.op("ReduceMax", vs(y), aIs("axes", 2), aI("keepdims", 0)), graph.Float)
		return b
	}},
	{"DLRM embedding bag + pairwise interaction", "26 tables 100000x64, 1x27x64 bmm", func() *mb {
		b := newMB(13)
		dense := b.in("dense", 1, 1, 64)
		embs := []*graph.Value{dense}
		for t := 0; t < 26; t++ {
			idx := graph.NewTensor(graph.Int64, []int{1, 1})
			idx.Int64s()[0] = int64(b.rng.IntN(100000))
			embs = append(embs, b.op("Gather", vs(b.w(0.01, 100000, 64), b.inT("ids"+string(rune('a'+t)), idx))))
		}
		z := b.op("Concat", embs, aI("axis", 1))
		b.out(b.op("MatMul", vs(z, b.op("Transpose", vs(z), aIs("perm", 0, 2, 1)))), graph.Float)
		return b
	}},
	{"LM head GEMV + Softmax (32000 vocab)", "1x1x512 @ 512x32000", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 1, 512)
		y := b.op("MatMul", vs(x, b.w(0.044, 512, 32000)))
		b.out(b.op("Softmax", vs(y), aI("axis", -1)), graph.Float)
		return b
	}},
	{"Dynamic quantized MatMul (DynamicQuantizeLinear/MatMulInteger)", "1x128x768 @ int8 768x768", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 128, 768)
		q := b.opN("DynamicQuantizeLinear", 3, vs(x))
		w := graph.NewTensor(graph.Int8, []int{768, 768})
		for i := range graph.Elems[int8](w) {
			graph.Elems[int8](w)[i] = int8(b.rng.IntN(255) - 127)
		}
		wz := graph.NewTensor(graph.Int8, nil)
		mm := b.op("MatMulInteger", vs(q[0], b.ct(w), q[2], b.ct(wz)))
		scale := b.op("Mul", vs(q[1], b.scalar(0.0004)))
		b.out(b.op("Mul", vs(b.op("Cast", vs(mm), aI("to", int64(graph.Float))), scale)), graph.Float)
		return b
	}},
	{"Softmax 91-wide rows (SSD class scores)", "1x8732x91", softmax(1, 8732, 91)},
	{"NonZero + Gather (score threshold post-processing)", "1x25200 scores", func() *mb {
		b := newMB(13)
		x := b.in("x", 25200, 85)
		score := b.op("Gather", vs(x, b.i64scalar(4)), aI("axis", 1))
		keep := b.op("NonZero", vs(b.op("Greater", vs(score, b.scalar(1.5)))))
		b.out(b.op("Gather", vs(x, b.op("Squeeze", vs(keep, b.i64(0)))), aI("axis", 0)), graph.Float)
		return b
	}},
	{"Gather small rows (Swin relative position bias)", "169x4 table, 2401 indices", func() *mb {
		b := newMB(13)
		idx := graph.NewTensor(graph.Int64, []int{2401})
		for i := range idx.Int64s() {
			idx.Int64s()[i] = int64(b.rng.IntN(169))
		}
		t := b.in("table", 169, 4)
		g := b.op("Gather", vs(t, b.ct(idx)), aI("axis", 0))
		g = b.op("Transpose", vs(b.op("Reshape", vs(g, b.i64(49, 49, 4)))), aIs("perm", 2, 0, 1))
		b.out(b.op("Add", vs(b.in("attn", 64, 4, 49, 49), g)), graph.Float)
		return b
	}},
	{"QuickGELU x*sigmoid(1.702x) (CLIP)", "1x197x3072", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 197, 3072)
		b.out(b.op("Mul", vs(x, b.op("Sigmoid", vs(b.op("Mul", vs(x, b.scalar(1.702))))))), graph.Float)
		return b
	}},
	{"YOLOv5 box decode (Sigmoid/Mul/Pow/Add)", "1x3x80x80x85", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 3, 80, 80, 85)
		y := b.op("Sigmoid", vs(x))
		parts := b.opN("Split", 3, vs(y, b.i64(2, 2, 81)), aI("axis", 4))
		xy := b.op("Mul", vs(b.op("Add", vs(b.op("Mul", vs(parts[0], b.scalar(2))), b.w(1, 1, 1, 80, 80, 2))), b.scalar(8)))
		wh := b.op("Mul", vs(b.op("Pow", vs(b.op("Mul", vs(parts[1], b.scalar(2))), b.scalar(2))), b.w(1, 1, 3, 1, 1, 2)))
		b.out(b.op("Concat", vs(xy, wh, parts[2]), aI("axis", 4)), graph.Float)
		return b
	}},
	{"ConvNeXt downsample 2x2 s2 (56x56)", "1x96x56x56 -> 192", convCase([]int{1, 96, 56, 56}, 192, 2, 2, 0, 1, 1)},
	{"PVT spatial reduction Conv 4x4 s4", "1x128x64x64 -> 128x16x16", convCase([]int{1, 128, 64, 64}, 128, 4, 4, 0, 1, 1)},
	{"Segformer spatial reduction Conv 8x8 s8", "1x64x128x128 -> 64x16x16", convCase([]int{1, 64, 128, 128}, 64, 8, 8, 0, 1, 1)},
	{"Sigmoid", "1x256x56x56", unary("Sigmoid", 13, 1, 256, 56, 56)},
	{"Tanh", "1x256x56x56", unary("Tanh", 13, 1, 256, 56, 56)},
	{"Exp", "1x256x56x56", unary("Exp", 13, 1, 256, 56, 56)},
	{"HardSwish", "1x256x56x56", unary("HardSwish", 14, 1, 256, 56, 56)},
	{"Softplus", "1x256x56x56", unary("Softplus", 13, 1, 256, 56, 56)},
	{"Mish (Softplus/Tanh/Mul)", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Mul", vs(x, b.op("Tanh", vs(b.op("Softplus", vs(x)))))), graph.Float)
		return b
	}},
	{"LeakyRelu", "1x256x56x56", unary("LeakyRelu", 13, 1, 256, 56, 56)},
	{"PRelu per-channel", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("PRelu", vs(x, b.w(0.1, 256, 1, 1))), graph.Float)
		return b
	}},
	{"Abs+Sqrt", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Sqrt", vs(b.op("Abs", vs(x)))), graph.Float)
		return b
	}},
	{"Pow general exponent", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		b.out(b.op("Pow", vs(b.op("Abs", vs(x)), b.scalar(1.7))), graph.Float)
		return b
	}},
	{"Div by tensor", "1x256x56x56", func() *mb {
		b := newMB(13)
		x := b.in("x", 1, 256, 56, 56)
		y := b.in("y", 1, 256, 56, 56)
		b.out(b.op("Div", vs(x, b.op("Add", vs(b.op("Abs", vs(y)), b.scalar(1))))), graph.Float)
		return b
	}},
}

// qlinearConv is a QOperator convolution (ORT's static QOperator format,
// TFLite int8 models converted to ONNX): uint8 input quantized from
// floats, int8 weights per output channel, an int32 bias, uint8 output.
// quantIn is an input of the given shape quantized to uint8 (scale 0.02,
// zero point 128, returned for the ops after it).
func quantIn(b *mb, shape ...int) (*graph.Value, *graph.Value) {
	zp := graph.NewTensor(graph.Uint8, []int{})
	zp.Data().([]uint8)[0] = 128
	z := b.ct(zp)
	return b.op("QuantizeLinear", vs(b.in(fmt.Sprintf("x%d", len(b.feeds)), shape...), b.scalar(0.02), z)), z
}

// qlinearBinary is a com.microsoft QLinearAdd or QLinearMul of two uint8
// tensors 1x64x56x56.
func qlinearBinary(op string) func() *mb {
	return func() *mb {
		b := newMB(13)
		aq, z := quantIn(b, 1, 64, 56, 56)
		bq, _ := quantIn(b, 1, 64, 56, 56)
		y := b.msOp(op, vs(aq, b.scalar(0.02), z, bq, b.scalar(0.02), z, b.scalar(0.04), z))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.04), z)), graph.Float)
		return b
	}
}

// qlinearUnary is a com.microsoft QLinearSigmoid or QLinearLeakyRelu of a
// uint8 tensor 1x64x56x56.
func qlinearUnary(op string, attrs ...*onnxAttr) func() *mb {
	return func() *mb {
		b := newMB(13)
		xq, z := quantIn(b, 1, 64, 56, 56)
		y := b.msOp(op, vs(xq, b.scalar(0.02), z, b.scalar(0.01), z), attrs...)
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.01), z)), graph.Float)
		return b
	}
}

func qlinearConv(c, m, group, k, stride, hw int) func() *mb {
	return func() *mb {
		b := newMB(13)
		x := b.in("x", 1, c, hw, hw)
		zp := graph.NewTensor(graph.Uint8, []int{})
		zp.Data().([]uint8)[0] = 128
		z := b.ct(zp)
		xq := b.op("QuantizeLinear", vs(x, b.scalar(0.02), z))
		wq := graph.NewTensor(graph.Int8, []int{m, c / group, k, k})
		for i, d := 0, wq.Data().([]int8); i < len(d); i++ {
			d[i] = int8(b.rng.IntN(255) - 127)
		}
		ws := make([]float32, m)
		for i := range ws {
			ws[i] = 0.001 + 0.001*float32(b.rng.Float64())
		}
		bias := graph.NewTensor(graph.Int32, []int{m})
		for i, d := 0, graph.Elems[int32](bias); i < len(d); i++ {
			d[i] = int32(b.rng.IntN(2001) - 1000)
		}
		p := int64(k / 2)
		y := b.op("QLinearConv", vs(xq, b.scalar(0.02), z, b.ct(wq), b.fc([]int{m}, ws), b.ct(graph.NewTensor(graph.Int8, []int{m})),
			b.scalar(0.05), z, b.ct(bias)), aIs("pads", p, p, p, p), aIs("strides", int64(stride), int64(stride)), aI("group", int64(group)))
		b.out(b.op("DequantizeLinear", vs(y, b.scalar(0.05), z)), graph.Float)
		return b
	}
}

func toAttrs(a []any) []*onnxAttr {
	out := make([]*onnxAttr, len(a))
	for i, v := range a {
		out[i] = v.(*onnxAttr)
	}
	return out
}
