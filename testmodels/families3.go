package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// conv1d adds a 1-D convolution over x [N, C, L] with He-initialized
// weights [outC, C/group, k], as PyTorch exports nn.Conv1d.
func (b *Builder) conv1d(x *graph.Value, outC, k, stride, pad, group int, bias bool) *graph.Value {
	s := b.shapes[x]
	c := s[1]
	w := b.Const("conv1d_w", []int{outC, c / group, k}, b.Normal(outC*c/group*k, 0, math.Sqrt(2/float64(c/group*k))))
	inputs := []*graph.Value{x, w}
	if bias {
		inputs = append(inputs, b.Const("conv1d_b", []int{outC}, b.Normal(outC, 0, 0.05)))
	}
	attrs := []*onnxpb.AttributeProto{
		graph.AttrIntsOf("kernel_shape", int64(k)),
		graph.AttrIntsOf("strides", int64(stride)),
		graph.AttrIntsOf("pads", int64(pad), int64(pad)),
	}
	if group != 1 {
		attrs = append(attrs, graph.AttrIntOf("group", int64(group)))
	}
	return b.node("Conv", inputs, []int{s[0], outC, (s[2]+2*pad-k)/stride + 1}, attrs...)
}

// groupNorm adds GroupNormalization as PyTorch (opset < 18) exports
// nn.GroupNorm: a Reshape to [N, groups, -1], an InstanceNormalization with
// unit scale and zero shift, a Reshape back, and the per-channel affine as
// Mul and Add of [C, 1, ...] constants.
func (b *Builder) groupNorm(x *graph.Value, groups int) *graph.Value {
	s := b.shapes[x]
	c := s[1]
	ones := make([]float32, groups)
	for i := range ones {
		ones[i] = 1
	}
	g := b.Reshape(x, s[0], groups, -1)
	g = b.node("InstanceNormalization", []*graph.Value{g, b.Const("gn_one", []int{groups}, ones), b.Const("gn_zero", []int{groups}, make([]float32, groups))},
		b.shapes[g], graph.AttrFloatOf("epsilon", 1e-5))
	g = b.Reshape(g, s...)
	affine := make([]int, len(s)-1)
	for i := range affine {
		affine[i] = 1
	}
	affine[0] = c
	g = b.Binary("Mul", g, b.Const("gn_scale", affine, b.Uniform(c, 0.5, 1.5)))
	return b.Binary("Add", g, b.Const("gn_bias", affine, b.Normal(c, 0, 0.1)))
}

// instanceNorm adds an InstanceNormalization with trained-like scales and
// shifts, as style-transfer and GAN generators use after every convolution.
func (b *Builder) instanceNorm(x *graph.Value) *graph.Value {
	c := b.shapes[x][1]
	return b.node("InstanceNormalization", []*graph.Value{x, b.Const("in_scale", []int{c}, b.Uniform(c, 0.5, 1.5)), b.Const("in_bias", []int{c}, b.Normal(c, 0, 0.1))},
		b.shapes[x], graph.AttrFloatOf("epsilon", 1e-5))
}

// reflectPad adds a Pad (opset 11+, pads as an input) of p on both sides of
// H and W in reflect mode, as PyTorch exports nn.ReflectionPad2d.
func (b *Builder) reflectPad(x *graph.Value, p int) *graph.Value {
	s := b.shapes[x]
	pads := b.Int64Const("pads", 0, 0, int64(p), int64(p), 0, 0, int64(p), int64(p))
	return b.node("Pad", []*graph.Value{x, pads}, []int{s[0], s[1], s[2] + 2*p, s[3] + 2*p}, graph.AttrStringOf("mode", "reflect"))
}

// resizeLinear adds a bilinear Resize to h x w by output sizes, as PyTorch
// exports F.interpolate(mode="bilinear", align_corners=False).
func (b *Builder) resizeLinear(x *graph.Value, h, w int) *graph.Value {
	s := b.shapes[x]
	sizes := b.Int64Const("resize_sizes", int64(s[0]), int64(s[1]), int64(h), int64(w))
	return b.node("Resize", []*graph.Value{x, nil, nil, sizes}, []int{s[0], s[1], h, w},
		graph.AttrStringOf("mode", "linear"),
		graph.AttrStringOf("coordinate_transformation_mode", "half_pixel"))
}

// Wav2Vec is a wav2vec 2.0-style speech encoder (Baevski et al., 2020),
// scaled down: a convolutional feature encoder over the raw waveform (a
// 1-D conv of kernel 10 stride 5 with GroupNorm as PyTorch exports it,
// then four of kernel 3 stride 2, each with Gelu), a LayerNorm and a Linear
// projection per frame, the convolutional positional embedding (a grouped
// 1-D conv of kernel 32, 16 groups, its extra frame dropped by a Slice,
// Gelu, added back), two pre-LayerNorm transformer layers and a CTC head
// of 32 classes. Input "input" 1x1x16000 (one second at 16 kHz), output
// "logits" 1x199x32.
func Wav2Vec(seed uint64) *graph.Model {
	const ch, dim, heads, mlp, classes = 128, 192, 4, 768, 32
	const hd = dim / heads
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 1, 16000)
	x = b.GeluErf(b.groupNorm(b.conv1d(x, ch, 10, 5, 0, 1, false), ch))
	for i := 0; i < 4; i++ {
		x = b.GeluErf(b.conv1d(x, ch, 3, 2, 0, 1, false))
	}
	frames := b.Shape(x)[2]
	t := b.Linear(b.LayerNorm(b.Transpose(x, 0, 2, 1)), dim, 1) // [1, frames, dim]
	p := b.conv1d(b.Transpose(t, 0, 2, 1), dim, 32, 1, 16, 16, true)
	p = b.node("Slice", []*graph.Value{p, b.Int64Const("slice_start", 0), b.Int64Const("slice_end", int64(frames)), b.Int64Const("slice_axis", 2)},
		[]int{1, dim, frames})
	t = b.LayerNorm(b.Add(t, b.Transpose(b.GeluErf(p), 0, 2, 1)))
	split := func(v *graph.Value, perm ...int) *graph.Value {
		return b.Transpose(b.Reshape(v, 1, frames, heads, hd), perm...)
	}
	for l := 0; l < 2; l++ {
		h := b.LayerNorm(t)
		q, k, v := b.Linear(h, dim, 1), b.Linear(h, dim, 1), b.Linear(h, dim, 1)
		s := b.Binary("Mul", b.MatMul(split(q, 0, 2, 1, 3), split(k, 0, 2, 3, 1)), b.Scalar("attn_scale", float32(1/math.Sqrt(hd))))
		a := b.MatMul(b.Softmax(s), split(v, 0, 2, 1, 3))
		t = b.Add(t, b.Linear(b.Reshape(b.Transpose(a, 0, 2, 1, 3), 1, frames, dim), dim, 1))
		t = b.Add(t, b.Linear(b.GeluErf(b.Linear(b.LayerNorm(t), mlp, 1)), dim, 1))
	}
	x = b.Linear(b.LayerNorm(t), classes, 1)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// DeepLab is a DeepLabV3-style segmenter (Chen et al., 2017), scaled down:
// three 3x3 stride-2 conv+BN+Relu layers to 1/8 resolution, two residual
// blocks of 3x3 convolutions with dilation 2, atrous spatial pyramid
// pooling (a 1x1 branch, 3x3 branches of dilation 6, 12 and 18, and an
// image-pooling branch bilinearly resized back), a Concat, a 1x1 fuse, a
// 1x1 classifier to 21 classes and a bilinear Resize to the input size
// (half_pixel, as F.interpolate with align_corners=False). Input "input"
// 1x3x128x128, output "logits" 1x21x128x128.
func DeepLab(seed uint64) *graph.Model {
	const size, ch, aspp, classes = 128, 128, 64, 21
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, size, size)
	cbr := func(x *graph.Value, c, k, stride, dil int) *graph.Value {
		pad := dil * (k / 2)
		return b.Relu(b.BatchNorm(b.Conv(x, c, k, ConvOpts{Stride: stride, Pad: pad, Dilation: dil, NoBias: true})))
	}
	x = cbr(x, 32, 3, 2, 1)
	x = cbr(x, 64, 3, 2, 1)
	x = cbr(x, ch, 3, 2, 1)
	for i := 0; i < 2; i++ {
		h := b.BatchNorm(b.Conv(cbr(x, ch, 3, 1, 2), ch, 3, ConvOpts{Pad: 2, Dilation: 2, NoBias: true}))
		x = b.Relu(b.Add(x, h))
	}
	s := b.Shape(x)
	branches := []*graph.Value{cbr(x, aspp, 1, 1, 1)}
	for _, d := range []int{6, 12, 18} {
		branches = append(branches, cbr(x, aspp, 3, 1, d))
	}
	pooled := b.Relu(b.Conv(b.GlobalAveragePool(x), aspp, 1, ConvOpts{}))
	branches = append(branches, b.resizeLinear(pooled, s[2], s[3]))
	x = cbr(b.Concat(1, branches...), aspp, 1, 1, 1)
	x = b.resizeLinear(b.Conv(x, classes, 1, ConvOpts{}), size, size)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// ResNeXt is a small ResNeXt (Xie et al., 2017): a 7x7 stride-2 stem with
// BatchNormalization, Relu and a 3x3 stride-2 MaxPool, then two stages of
// two bottlenecks whose 3x3 convolution is grouped (cardinality 32, 4 and 8
// channels a group), a projection shortcut where shapes change, global
// pooling and a Gemm to 1000 classes. Input "input" 1x3x112x112, output
// "logits" 1x1000.
func ResNeXt(seed uint64) *graph.Model {
	const card = 32
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 112, 112)
	x = b.MaxPool(b.Relu(b.BatchNorm(b.Conv(x, 64, 7, ConvOpts{Stride: 2, Pad: 3, NoBias: true}))), 3, 2, 1)
	for _, st := range []struct{ width, out, stride int }{{128, 256, 1}, {256, 512, 2}} {
		for i := 0; i < 2; i++ {
			stride := 1
			if i == 0 {
				stride = st.stride
			}
			h := b.Relu(b.BatchNorm(b.Conv(x, st.width, 1, ConvOpts{NoBias: true})))
			h = b.Relu(b.BatchNorm(b.Conv(h, st.width, 3, ConvOpts{Stride: stride, Pad: 1, Group: card, NoBias: true})))
			h = b.BatchNorm(b.Conv(h, st.out, 1, ConvOpts{NoBias: true}))
			short := x
			if i == 0 {
				short = b.BatchNorm(b.Conv(x, st.out, 1, ConvOpts{Stride: stride, NoBias: true}))
			}
			x = b.Relu(b.Add(short, h))
		}
	}
	x = b.Gemm(b.Flatten(b.GlobalAveragePool(x)), 1000)
	renameOutput(b, x, "logits")
	return b.Finish()
}

// StyleTransfer is a fast style-transfer generator (Johnson et al., 2016):
// reflection padding and a 9x9 conv, two 3x3 stride-2 convs, three residual
// blocks, two nearest 2x upsamplings each followed by a 3x3 conv, and a 9x9
// conv back to RGB; InstanceNormalization and Relu after every conv but the
// last. An image in, an image out. Input "input" 1x3x128x128, output
// "image" 1x3x128x128.
func StyleTransfer(seed uint64) *graph.Model {
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 128, 128)
	cir := func(x *graph.Value, c, k, stride int, relu bool) *graph.Value {
		y := b.instanceNorm(b.Conv(b.reflectPad(x, k/2), c, k, ConvOpts{Stride: stride}))
		if relu {
			y = b.Relu(y)
		}
		return y
	}
	x = cir(x, 32, 9, 1, true)
	x = cir(x, 64, 3, 2, true)
	x = cir(x, 128, 3, 2, true)
	for i := 0; i < 3; i++ {
		x = b.Add(x, cir(cir(x, 128, 3, 1, true), 128, 3, 1, false))
	}
	x = cir(b.Upsample(x, 2), 64, 3, 1, true)
	x = cir(b.Upsample(x, 2), 32, 3, 1, true)
	x = b.Conv(b.reflectPad(x, 4), 3, 9, ConvOpts{})
	renameOutput(b, x, "image")
	return b.Finish()
}

// BERT is a small BERT encoder for sequence classification (Devlin et al.,
// 2019) as Hugging Face exports it, fed token ids and an attention mask:
// word embeddings by Gather, position and token-type embeddings added, a
// LayerNorm; the mask made additive as the exporter writes it (Unsqueeze,
// Cast to float, 1 - mask, times -10000) and added to every head's scores
// (Div by sqrt(head size), Softmax); two post-LN layers of 4 heads of 32
// and an Erf Gelu MLP of 512; the pooler (the first token, a Gemm, Tanh)
// and a Gemm to 2 classes. Inputs "input_ids" and "attention_mask" int64
// 1x64 (a vocabulary of 1000; the mask 1 on tokens, 0 on padding), output
// "logits" 1x2.
func BERT(seed uint64) *graph.Model {
	const vocab, seq, dim, heads, mlp = 1000, 64, 128, 4, 512
	const hd = dim / heads
	b := NewBuilder(seed, 17)
	ids := b.G.AddInput("input_ids", graph.Int64, []int64{1, seq})
	mask := b.G.AddInput("attention_mask", graph.Int64, []int64{1, seq})
	b.shapes[ids], b.shapes[mask] = []int{1, seq}, []int{1, seq}
	words := b.Const("word_embeddings", []int{vocab, dim}, b.Normal(vocab*dim, 0, 1))
	t := b.node("Gather", []*graph.Value{words, ids}, []int{1, seq, dim})
	t = b.Add(t, b.Const("position_embeddings", []int{1, seq, dim}, b.Normal(seq*dim, 0, 0.3)))
	t = b.Add(t, b.Const("token_type_embedding", []int{dim}, b.Normal(dim, 0, 0.3)))
	t = b.LayerNorm(t)
	m := b.node("Unsqueeze", []*graph.Value{mask, b.Int64Const("unsqueeze_axes", 1, 2)}, []int{1, 1, 1, seq})
	m = b.node("Cast", []*graph.Value{m}, []int{1, 1, 1, seq}, graph.AttrIntOf("to", int64(graph.Float)))
	m = b.Binary("Mul", b.Binary("Sub", b.Scalar("one", 1), m), b.Scalar("mask_min", -10000))
	split := func(v *graph.Value, perm ...int) *graph.Value {
		return b.Transpose(b.Reshape(v, 1, seq, heads, hd), perm...)
	}
	for l := 0; l < 2; l++ {
		q, k, v := b.Linear(t, dim, 1), b.Linear(t, dim, 1), b.Linear(t, dim, 1)
		s := b.Binary("Div", b.MatMul(split(q, 0, 2, 1, 3), split(k, 0, 2, 3, 1)), b.Scalar("attn_div", float32(math.Sqrt(hd))))
		a := b.MatMul(b.Softmax(b.Binary("Add", s, m)), split(v, 0, 2, 1, 3))
		t = b.LayerNorm(b.Add(t, b.Linear(b.Reshape(b.Transpose(a, 0, 2, 1, 3), 1, seq, dim), dim, 1)))
		t = b.LayerNorm(b.Add(t, b.Linear(b.GeluErf(b.Linear(t, mlp, 1)), dim, 1)))
	}
	x := b.Unary("Tanh", b.Gemm(b.Gather(t, 1, 0), dim))
	x = b.Gemm(x, 2)
	renameOutput(b, x, "logits")
	return b.Finish()
}
