package testmodels

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// gapSpread is the share of a channel's per-position variance that survives
// global average pooling as input-to-input variation on the sample inputs of
// Samples (smooth fields plus per-image offsets, so the spatial average still
// moves). It sets the scale of the classifier heads; the zoo tests check the
// logits' spread on real runs.
const gapSpread = 0.1

// blocksKey is the model metadata key under which MarkBlock's values are listed.
const blocksKey = "onnxq.testmodels.blocks"

// MarkBlock records v as the output of a block (a residual block, a fire module,
// a transformer layer): the zoo tests check that activations keep an O(1) scale
// there. Finish writes the list into the model's metadata.
func (b *Builder) MarkBlock(v *graph.Value) { b.blocks = append(b.blocks, v.Name) }

// Finish stores the block outputs in the model metadata and returns the model.
func (b *Builder) Finish() *graph.Model {
	if len(b.blocks) > 0 {
		key, val := blocksKey, strings.Join(b.blocks, ",")
		b.M.Proto.MetadataProps = append(b.M.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: &key, Value: &val})
	}
	return b.M
}

// BlockOutputs lists the block output values recorded in a zoo model's
// metadata, in graph order (nil for a model without them).
func BlockOutputs(m *graph.Model) []string {
	for _, p := range m.Proto.MetadataProps {
		if p.GetKey() == blocksKey && p.GetValue() != "" {
			return strings.Split(p.GetValue(), ",")
		}
	}
	return nil
}

// broadcastShape is the multidirectional (numpy) broadcast of two shapes.
func broadcastShape(a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		out[i] = max(da, db)
	}
	return out
}

// nodeN adds a node with several outputs of the given shapes.
func (b *Builder) nodeN(op string, inputs []*graph.Value, shapes [][]int, attrs ...*onnxpb.AttributeProto) []*graph.Value {
	name := b.name(op)
	outs := make([]string, len(shapes))
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_out%d", name, i)
	}
	n := b.G.AddNode(op, name, inputs, outs, attrs...)
	for i, s := range shapes {
		b.shapes[n.Outputs[i]] = s
	}
	return n.Outputs
}

// Scalar adds a float32 scalar initializer.
func (b *Builder) Scalar(prefix string, v float32) *graph.Value {
	c := b.G.AddInitializer(b.G.UniqueName(prefix), graph.Float32Tensor(nil, []float32{v}))
	b.shapes[c] = []int{}
	return c
}

// Unary adds a one-input elementwise op (Sigmoid, Erf, Sqrt, ...).
func (b *Builder) Unary(op string, x *graph.Value) *graph.Value {
	return b.node(op, []*graph.Value{x}, b.shapes[x])
}

// Binary adds a broadcasting two-input elementwise op (Mul, Sub, Div, Pow, ...).
func (b *Builder) Binary(op string, x, y *graph.Value) *graph.Value {
	return b.node(op, []*graph.Value{x, y}, broadcastShape(b.shapes[x], b.shapes[y]))
}

// Sigmoid adds a logistic sigmoid.
func (b *Builder) Sigmoid(x *graph.Value) *graph.Value {
	y := b.Unary("Sigmoid", x)
	b.setProbe(y, func() *act { return b.probe[x].mapf(sigmoid) })
	return y
}

// SiLU adds x * sigmoid(x) as exporters write it: a Sigmoid and a Mul that reads
// both x and the Sigmoid (the diamond the executor's fusion looks for).
func (b *Builder) SiLU(x *graph.Value) *graph.Value {
	y := b.Binary("Mul", x, b.Unary("Sigmoid", x))
	b.setProbe(y, func() *act { return b.probe[x].mapf(func(v float64) float64 { return v * sigmoid(v) }) })
	return y
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// Concat joins tensors along axis (negative counts from the end).
func (b *Builder) Concat(axis int, xs ...*graph.Value) *graph.Value {
	shape := append([]int(nil), b.shapes[xs[0]]...)
	a := axis
	if a < 0 {
		a += len(shape)
	}
	shape[a] = 0
	ps := make([]*act, len(xs))
	for i, x := range xs {
		shape[a] += b.shapes[x][a]
		ps[i] = b.probe[x]
	}
	y := b.node("Concat", xs, shape, graph.AttrIntOf("axis", int64(axis)))
	if a == 1 && len(shape) == 4 {
		b.setProbe(y, func() *act { return probeConcat(ps) })
	}
	return y
}

// Upsample adds a nearest-neighbour Resize by an integer factor on H and W,
// as PyTorch exports nn.Upsample(mode="nearest").
func (b *Builder) Upsample(x *graph.Value, factor int) *graph.Value {
	s := b.shapes[x]
	f := float32(factor)
	scales := b.Const("resize_scales", []int{4}, []float32{1, 1, f, f})
	y := b.node("Resize", []*graph.Value{x, nil, scales}, []int{s[0], s[1], s[2] * factor, s[3] * factor},
		graph.AttrStringOf("mode", "nearest"),
		graph.AttrStringOf("coordinate_transformation_mode", "asymmetric"),
		graph.AttrStringOf("nearest_mode", "floor"))
	b.setProbe(y, func() *act { return probeUpsample(b.probe[x], factor) })
	return y
}

// PoolOpts are the optional settings of MaxPoolWith.
type PoolOpts struct {
	Stride, Pad int
	// Ceil rounds the output size up (ceil_mode=1), as SqueezeNet's pools do.
	Ceil bool
}

// MaxPoolWith adds a k x k max pooling with ceil mode and symmetric padding.
func (b *Builder) MaxPoolWith(x *graph.Value, k int, o PoolOpts) *graph.Value {
	if o.Stride == 0 {
		o.Stride = 1
	}
	s := b.shapes[x]
	size := func(in int) int {
		span := in + 2*o.Pad - k
		if !o.Ceil {
			return span/o.Stride + 1
		}
		out := (span+o.Stride-1)/o.Stride + 1
		// A last window that would start in the end padding is dropped.
		if (out-1)*o.Stride >= in+o.Pad {
			out--
		}
		return out
	}
	attrs := []*onnxpb.AttributeProto{
		graph.AttrIntsOf("kernel_shape", int64(k), int64(k)),
		graph.AttrIntsOf("strides", int64(o.Stride), int64(o.Stride)),
		graph.AttrIntsOf("pads", int64(o.Pad), int64(o.Pad), int64(o.Pad), int64(o.Pad)),
	}
	if o.Ceil {
		attrs = append(attrs, graph.AttrIntOf("ceil_mode", 1))
	}
	y := b.node("MaxPool", []*graph.Value{x}, []int{s[0], s[1], size(s[2]), size(s[3])}, attrs...)
	b.setProbe(y, func() *act { return probeMaxPool(b.probe[x], k, o.Stride, o.Pad, b.shapes[y][2], b.shapes[y][3]) })
	return y
}

// Subsample2 takes every second row and column (x[:, :, ::2, ::2]) with a Slice,
// as the option-A shortcut of CIFAR ResNets is exported.
func (b *Builder) Subsample2(x *graph.Value) *graph.Value {
	s := b.shapes[x]
	starts := b.Int64Const("slice_starts", 0, 0)
	ends := b.Int64Const("slice_ends", math.MaxInt64, math.MaxInt64)
	axes := b.Int64Const("slice_axes", 2, 3)
	steps := b.Int64Const("slice_steps", 2, 2)
	y := b.node("Slice", []*graph.Value{x, starts, ends, axes, steps}, []int{s[0], s[1], (s[2] + 1) / 2, (s[3] + 1) / 2})
	b.setProbe(y, func() *act { return probeSubsample2(b.probe[x]) })
	return y
}

// PadChannels zero-pads the channel axis by before and after channels (the
// rest of the option-A shortcut).
func (b *Builder) PadChannels(x *graph.Value, before, after int) *graph.Value {
	s := b.shapes[x]
	pads := b.Int64Const("pads", 0, int64(before), 0, 0, 0, int64(after), 0, 0)
	y := b.node("Pad", []*graph.Value{x, pads}, []int{s[0], s[1] + before + after, s[2], s[3]}, graph.AttrStringOf("mode", "constant"))
	b.setProbe(y, func() *act { return probePadChannels(b.probe[x], before, after) })
	return y
}

// MatMul multiplies two activations with numpy batch broadcasting.
func (b *Builder) MatMul(x, y *graph.Value) *graph.Value {
	sx, sy := b.shapes[x], b.shapes[y]
	batch := broadcastShape(sx[:len(sx)-2], sy[:len(sy)-2])
	return b.node("MatMul", []*graph.Value{x, y}, append(batch, sx[len(sx)-2], sy[len(sy)-1]))
}

// Linear adds x W + bias as PyTorch exports nn.Linear on a sequence: a MatMul
// with a constant W [in, out] and an Add. W ~ N(0, gain^2 / in), so an input of
// unit scale gives an output of about gain.
func (b *Builder) Linear(x *graph.Value, out int, gain float64) *graph.Value {
	s := b.shapes[x]
	in := s[len(s)-1]
	w := b.Const("linear_w", []int{in, out}, b.Normal(in*out, 0, gain/math.Sqrt(float64(in))))
	bias := b.Const("linear_b", []int{out}, b.Normal(out, 0, 0.02))
	return b.Binary("Add", b.MatMul(x, w), bias)
}

// Transpose permutes the axes.
func (b *Builder) Transpose(x *graph.Value, perm ...int) *graph.Value {
	s := b.shapes[x]
	shape := make([]int, len(perm))
	p64 := make([]int64, len(perm))
	for i, p := range perm {
		shape[i] = s[p]
		p64[i] = int64(p)
	}
	return b.node("Transpose", []*graph.Value{x}, shape, graph.AttrIntsOf("perm", p64...))
}

// Reshape reshapes to a static shape (one -1 allowed).
func (b *Builder) Reshape(x *graph.Value, shape ...int) *graph.Value {
	out := append([]int(nil), shape...)
	d64 := make([]int64, len(shape))
	known, free := 1, -1
	for i, d := range shape {
		d64[i] = int64(d)
		if d == -1 {
			free = i
		} else {
			known *= d
		}
	}
	if free >= 0 {
		out[free] = graph.Numel(b.shapes[x]) / known
	}
	return b.node("Reshape", []*graph.Value{x, b.Int64Const("shape", d64...)}, out)
}

// Split cuts x into equal parts along axis (opset 13+: sizes as an input).
func (b *Builder) Split(x *graph.Value, axis, parts int) []*graph.Value {
	s := b.shapes[x]
	sizes := make([]int64, parts)
	shapes := make([][]int, parts)
	for i := range sizes {
		sizes[i] = int64(s[axis] / parts)
		shapes[i] = append([]int(nil), s...)
		shapes[i][axis] = s[axis] / parts
	}
	ys := b.nodeN("Split", []*graph.Value{x, b.Int64Const("split", sizes...)}, shapes, graph.AttrIntOf("axis", int64(axis)))
	if axis == 1 && len(s) == 4 {
		for i, y := range ys {
			c0, c1 := i*s[1]/parts, (i+1)*s[1]/parts
			b.setProbe(y, func() *act { return probeChannels(b.probe[x], c0, c1) })
		}
	}
	return ys
}

// lnParams draws trained-like LayerNorm scales and shifts over the last axis:
// log-normal scales (channel ranges that differ by about 10x) with a few
// outlier dimensions at 8x, as trained transformers show.
func (b *Builder) lnParams(d int) (*graph.Value, *graph.Value) {
	gamma := b.logNormal(d, 1, 0.5)
	for i := 0; i < max(1, d/128); i++ {
		gamma[b.rng.IntN(d)] *= 8
	}
	return b.Const("ln_scale", []int{d}, gamma), b.Const("ln_bias", []int{d}, b.Normal(d, 0, 0.1))
}

// LayerNorm adds a LayerNormalization (opset 17) over the last axis.
func (b *Builder) LayerNorm(x *graph.Value) *graph.Value {
	gamma, beta := b.lnParams(b.shapes[x][len(b.shapes[x])-1])
	return b.node("LayerNormalization", []*graph.Value{x, gamma, beta}, b.shapes[x],
		graph.AttrIntOf("axis", -1), graph.AttrFloatOf("epsilon", 1e-5))
}

// LayerNormDecomposed is LayerNorm spelled out as PyTorch exports it before
// opset 17: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add.
func (b *Builder) LayerNormDecomposed(x *graph.Value) *graph.Value {
	gamma, beta := b.lnParams(b.shapes[x][len(b.shapes[x])-1])
	keep := append(append([]int(nil), b.shapes[x][:len(b.shapes[x])-1]...), 1)
	mean := b.node("ReduceMean", []*graph.Value{x}, keep, graph.AttrIntsOf("axes", -1), graph.AttrIntOf("keepdims", 1))
	d := b.Binary("Sub", x, mean)
	v := b.node("ReduceMean", []*graph.Value{b.Binary("Pow", d, b.Scalar("two", 2))}, keep, graph.AttrIntsOf("axes", -1), graph.AttrIntOf("keepdims", 1))
	sd := b.Unary("Sqrt", b.Binary("Add", v, b.Scalar("eps", 1e-5)))
	return b.Binary("Add", b.Binary("Mul", b.Binary("Div", d, sd), gamma), beta)
}

// GeluErf adds Gelu in the Erf form as PyTorch exports it:
// Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5).
func (b *Builder) GeluErf(x *graph.Value) *graph.Value {
	e := b.Unary("Erf", b.Binary("Div", x, b.Scalar("sqrt2", math.Sqrt2)))
	y := b.Binary("Mul", x, b.Binary("Add", e, b.Scalar("one", 1)))
	return b.Binary("Mul", y, b.Scalar("half", 0.5))
}

// LSTM adds an ONNX LSTM (gates i, o, f, c) over x [seq, batch, in] and returns
// Y [seq, dirs, batch, hidden] and Y_h [dirs, batch, hidden]. Input weights are
// N(0, 1/in) and recurrent ones N(0, 0.8^2/hidden) so the pre-activations are of
// unit scale without a runaway recurrence; the forget gate bias is 1, the usual
// trained-like choice that keeps the cell state alive.
func (b *Builder) LSTM(x *graph.Value, hidden int, bidirectional bool) (y, yh *graph.Value) {
	s := b.shapes[x]
	seq, batch, in := s[0], s[1], s[2]
	dirs := 1
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("hidden_size", int64(hidden))}
	if bidirectional {
		dirs = 2
		attrs = append(attrs, graph.AttrStringOf("direction", "bidirectional"))
	}
	w := b.Const("lstm_w", []int{dirs, 4 * hidden, in}, b.Normal(dirs*4*hidden*in, 0, 1/math.Sqrt(float64(in))))
	r := b.Const("lstm_r", []int{dirs, 4 * hidden, hidden}, b.Normal(dirs*4*hidden*hidden, 0, 0.8/math.Sqrt(float64(hidden))))
	bias := b.Normal(dirs*8*hidden, 0, 0.05)
	for d := 0; d < dirs; d++ {
		for j := 2 * hidden; j < 3*hidden; j++ {
			bias[d*8*hidden+j] += 1 // forget gate, input-side bias
		}
	}
	bv := b.Const("lstm_b", []int{dirs, 8 * hidden}, bias)
	outs := b.nodeN("LSTM", []*graph.Value{x, w, r, bv}, [][]int{{seq, dirs, batch, hidden}, {dirs, batch, hidden}}, attrs...)
	return outs[0], outs[1]
}

// logNormal returns n values median*exp(sigma*N(0,1)).
func (b *Builder) logNormal(n int, median, sigma float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(median * math.Exp(sigma*b.rng.NormFloat64()))
	}
	return out
}

// BNStyle shapes a trained-like BatchNormalization.
type BNStyle struct {
	// Gamma is the median scale (1 when zero). The last BN of a residual branch
	// takes a smaller one, as in trained ResNets, so the residual stream grows
	// slowly with depth.
	Gamma float64
	// Linear marks a BN that no activation follows (the end of a residual
	// branch, a projection): its shifts centre on zero instead of one scale.
	Linear bool
}

// trainedBN draws BatchNormalization parameters for an input whose probe
// activation is pre (unit statistics without the probe). "Trained-like" means:
// running mean and variance are the statistics the layer really sees (up to the
// small lag of a running average), scales are log-normal so channel ranges
// differ by about 10x across a layer, one channel in 32 (at least one) is an
// outlier with a 4x scale, and shifts are positive, about one scale (most units
// active) where an activation follows. Random deep networks whose BN shifts
// centre on zero are chaotic: input noise of 1% grew to a 30-80% change of
// MobileNetV2's logits, where a trained network is smooth; with shifts of one
// scale top-1 survives such noise on 88-100% of inputs (the zoo tests).
func (b *Builder) trainedBN(c int, pre *act, st BNStyle) (gamma, beta, mean, variance []float32) {
	mu, vr := make([]float64, c), make([]float64, c)
	if pre != nil {
		mu, vr = pre.channelStats()
	} else {
		for i := range vr {
			vr[i] = 1
		}
	}
	g := st.Gamma
	if g == 0 {
		g = 1
	}
	gamma = b.logNormal(c, g, 0.55)
	for i := 0; i < max(1, c/32); i++ {
		gamma[b.rng.IntN(c)] *= 4
	}
	shift := g
	if st.Linear {
		shift = 0
	}
	beta = b.Normal(c, shift, 0.35*g)
	mean, variance = make([]float32, c), make([]float32, c)
	for i := 0; i < c; i++ {
		mean[i] = float32(mu[i] + 0.05*math.Sqrt(vr[i])*b.rng.NormFloat64())
		variance[i] = float32(vr[i] * math.Exp(0.1*b.rng.NormFloat64()))
	}
	return gamma, beta, mean, variance
}

// foldBN turns inference BatchNormalization parameters (epsilon 1e-5) into a
// per-channel y = x*k + s.
func foldBN(gamma, beta, mean, variance []float32) (k, s []float32) {
	k, s = make([]float32, len(gamma)), make([]float32, len(gamma))
	for c := range gamma {
		k[c] = gamma[c] / float32(math.Sqrt(float64(variance[c])+1e-5))
		s[c] = beta[c] - mean[c]*k[c]
	}
	return k, s
}

// TrainedBN adds a BatchNormalization with trained-like statistics for x.
func (b *Builder) TrainedBN(x *graph.Value, st BNStyle) *graph.Value {
	c := b.shapes[x][1]
	gamma, beta, mean, variance := b.trainedBN(c, b.probe[x], st)
	y := b.node("BatchNormalization", []*graph.Value{x,
		b.Const("bn_scale", []int{c}, gamma), b.Const("bn_bias", []int{c}, beta),
		b.Const("bn_mean", []int{c}, mean), b.Const("bn_var", []int{c}, variance)},
		b.shapes[x], graph.AttrFloatOf("epsilon", 1e-5))
	b.setProbe(y, func() *act { k, s := foldBN(gamma, beta, mean, variance); return b.probe[x].affine(k, s) })
	return y
}

// ConvBN adds a He-initialized convolution followed by a trained-like
// BatchNormalization; with fold set the BN is folded into the convolution's
// weights and bias, as exporters in eval mode write it, which leaves the
// per-output-channel weight ranges about 10x apart.
func (b *Builder) ConvBN(x *graph.Value, outC, k int, o ConvOpts, st BNStyle, fold bool) *graph.Value {
	o = o.withDefaults()
	s := b.shapes[x]
	cpg := s[1] / o.Group
	w := b.Normal(outC*cpg*k*k, 0, math.Sqrt(2/float64(cpg*k*k)))
	var pre *act
	if b.probeN > 0 {
		pre = probeConv(b.probe[x], w, nil, outC, k, o, o.outSize(s[2], k), o.outSize(s[3], k))
	}
	if !fold {
		y := b.convWith(x, w, nil, outC, k, o)
		b.setProbe(y, func() *act { return pre })
		return b.TrainedBN(y, st)
	}
	kk, sh := foldBN(b.trainedBN(outC, pre, st))
	per := cpg * k * k
	for c := 0; c < outC; c++ {
		for i := c * per; i < (c+1)*per; i++ {
			w[i] *= kk[c]
		}
	}
	y := b.convWith(x, w, sh, outC, k, o)
	b.setProbe(y, func() *act { return pre.affine(kk, sh) })
	return y
}

// featureStats returns the per-channel mean of x's probe and the spread its
// consumer should plan for: the input-to-input variance after global pooling
// when x comes from one, else the per-position variance (unit without probe).
func (b *Builder) featureStats(x *graph.Value) (mean, spread []float64) {
	c := b.shapes[x][1]
	p := b.probe[x]
	if p == nil {
		mean, spread = make([]float64, c), make([]float64, c)
		for i := range spread {
			spread[i] = 1
		}
		return mean, spread
	}
	mean, spread = p.channelStats()
	if v := b.gapVar[x]; v != nil {
		spread = v
	}
	return mean, spread
}

// headWeights draws a trained-like last layer [out, in] on features of the
// given mean and spread: each output varies with a standard deviation of std
// around biasMean plus a per-output prior of spread prior*std, because each
// weight row is scaled to the features' spread and the bias cancels their mean.
func (b *Builder) headWeights(mean, spread []float64, out int, std, biasMean, prior float64) (w, bias []float32) {
	in := len(mean)
	w = b.Normal(out*in, 0, 1)
	bias = b.Normal(out, biasMean, prior*std)
	for j := 0; j < out; j++ {
		row := w[j*in : (j+1)*in]
		var v float64
		for c, x := range row {
			v += float64(x) * float64(x) * spread[c]
		}
		k := std / math.Sqrt(math.Max(v, 1e-24))
		for c := range row {
			row[c] *= float32(k)
			bias[j] -= row[c] * float32(mean[c])
		}
	}
	return w, bias
}

// Classifier adds a Gemm head on features x [N, C] whose logits vary from input
// to input by about logitStd, as a trained head's do, so that top-1 depends on
// the input instead of on a fixed offset (see headWeights).
func (b *Builder) Classifier(x *graph.Value, classes int, logitStd float64) *graph.Value {
	s := b.shapes[x]
	mean, spread := b.featureStats(x)
	w, bias := b.headWeights(mean, spread, classes, logitStd, 0, 0.2)
	return b.node("Gemm", []*graph.Value{x, b.Const("fc_w", []int{classes, s[1]}, w), b.Const("fc_b", []int{classes}, bias)},
		[]int{s[0], classes}, graph.AttrIntOf("transB", 1))
}

// HeadConv adds a 1x1 convolution whose output has, per position, a standard
// deviation of about std around mean: the last layer of a trained head.
// prior spreads the outputs' means by prior*std.
func (b *Builder) HeadConv(x *graph.Value, out int, std, mean, prior float64) *graph.Value {
	m, v := b.featureStats(x)
	w, bias := b.headWeights(m, v, out, std, mean, prior)
	y := b.convWith(x, w, bias, out, 1, ConvOpts{})
	b.setProbe(y, func() *act {
		return probeConv(b.probe[x], w, bias, out, 1, ConvOpts{}.withDefaults(), b.shapes[y][2], b.shapes[y][3])
	})
	return y
}

// Gather picks one index along axis, dropping that axis (a channel split as
// ShuffleNet exports it).
func (b *Builder) Gather(x *graph.Value, axis, index int) *graph.Value {
	s := b.shapes[x]
	shape := append(append([]int(nil), s[:axis]...), s[axis+1:]...)
	idx := b.G.AddInitializer(b.G.UniqueName("gather_index"), graph.Int64Tensor(nil, []int64{int64(index)}))
	b.shapes[idx] = []int{}
	return b.node("Gather", []*graph.Value{x, idx}, shape, graph.AttrIntOf("axis", int64(axis)))
}

// AveragePool adds a k x k average pooling (padding counted as zeros, as
// PyTorch exports it by default).
func (b *Builder) AveragePool(x *graph.Value, k, stride, pad int) *graph.Value {
	s := b.shapes[x]
	oh := (s[2]+2*pad-k)/stride + 1
	ow := (s[3]+2*pad-k)/stride + 1
	return b.node("AveragePool", []*graph.Value{x}, []int{s[0], s[1], oh, ow},
		graph.AttrIntsOf("kernel_shape", int64(k), int64(k)),
		graph.AttrIntsOf("strides", int64(stride), int64(stride)),
		graph.AttrIntsOf("pads", int64(pad), int64(pad), int64(pad), int64(pad)),
		graph.AttrIntOf("count_include_pad", 1))
}

// SqueezeExcite adds a squeeze-and-excitation gate as EfficientNet and
// MobileNetV3 export it: GlobalAveragePool, a 1x1 Conv down to squeeze
// channels with SiLU, a 1x1 Conv back with Sigmoid, and a Mul that scales
// each channel of x by its gate ([N, C, 1, 1] broadcast over the map). The
// second conv's biases centre the gates around 0.7 with a spread, as in
// trained nets, where few channels are switched fully off or on.
func (b *Builder) SqueezeExcite(x *graph.Value, squeeze int) *graph.Value {
	c := b.Shape(x)[1]
	s := b.SiLU(b.Conv(b.GlobalAveragePool(x), squeeze, 1, ConvOpts{}))
	w := b.Normal(c*squeeze, 0, math.Sqrt(1/float64(squeeze)))
	bias := b.Normal(c, 1, 0.5)
	o := ConvOpts{}.withDefaults()
	pre := b.convWith(s, w, bias, c, 1, o)
	b.setProbe(pre, func() *act { return probeConv(b.probe[s], w, bias, c, 1, o, 1, 1) })
	gate := b.Sigmoid(pre)
	y := b.Binary("Mul", x, gate)
	b.setProbe(y, func() *act { return probeScale(b.probe[x], b.probe[gate]) })
	return y
}

// probeScale multiplies each channel plane of x by g's value for it (g is
// [N, C, 1, 1]).
func probeScale(x, g *act) *act {
	if x == nil || g == nil || g.n != x.n || g.c != x.c || g.h*g.w != 1 {
		return nil
	}
	out := newAct(x.n, x.c, x.h, x.w)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			k := g.d[n*x.c+c]
			for i, v := range x.plane(n, c) {
				out.plane(n, c)[i] = v * k
			}
		}
	}
	return out
}
