package export

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// contribDomain is ONNX Runtime's contrib operator domain.
const contribDomain = "com.microsoft"

// layers reads every quantized layer, in node order, in each form onnxq
// writes: DequantizeLinear of an integer constant feeding a MatMul, Gemm or
// Conv (static W8A8 when the input is dequantized too, else weight-only);
// MatMulNBits; MatMulInteger and DynamicQuantizeMatMul (dynamic W8A8, per
// tensor) and MatMulInteger and MatMulIntegerToFloat after onnxq's per-token
// quantizer (dynamic W8A8, per token). Other
// dequantized constants (Gather tables) follow as weight-only tensors.
func (c *collector) layers() error {
	for _, n := range c.g.Nodes {
		var err error
		std := graph.IsStandardDomain(n.Domain)
		switch {
		case std && (n.OpType == "MatMul" || n.OpType == "Gemm" || n.OpType == "Conv"):
			err = c.qdqLayer(n)
		case n.Domain == contribDomain && n.OpType == "MatMulNBits":
			err = c.nbitsLayer(n)
		case n.Domain == contribDomain && n.OpType == "DynamicQuantizeMatMul":
			err = c.dynamicLayer(n, n.Input(1), n.Input(2), n.Input(3), n.Input(4))
		case std && n.OpType == "MatMulInteger":
			err = c.matMulInteger(n)
		case n.Domain == contribDomain && n.OpType == "MatMulIntegerToFloat":
			if tq := perTokenQuant(n.Input(0)); tq != nil {
				err = c.perTokenLayer(n, tq)
			} else {
				err = fmt.Errorf("its input is not quantized by onnxq's per-token quantizer (Abs -> ReduceMax -> Max -> Div -> Div -> Round -> Add -> Cast)")
			}
		}
		if err != nil {
			return fmt.Errorf("layer %q (%s): %w", n.Name, n.OpType, err)
		}
	}
	for _, n := range c.g.Nodes {
		if isQuantizedConst(n) && !c.used[n.Input(0)] {
			if err := c.otherWeight(n); err != nil {
				return fmt.Errorf("quantized constant %q: %w", n.Input(0).Name, err)
			}
		}
	}
	return nil
}

// use marks the constants among vs as exported.
func (c *collector) use(vs ...*graph.Value) {
	for _, v := range vs {
		if v != nil && v.Const != nil {
			c.used[v] = true
		}
	}
}

// name picks a layer's name; a weight several layers read names each layer
// by its node, so their tensors do not clash.
func (c *collector) name(weight string, n *graph.Node, shared bool) string {
	if shared {
		return layerName("", n)
	}
	return layerName(weight, n)
}

// qdqLayer reads a MatMul, Gemm or Conv whose weight is a dequantized
// integer constant.
func (c *collector) qdqLayer(n *graph.Node) error {
	wv := n.Input(1)
	if wv == nil || !isQuantizedConst(wv.Producer) {
		return nil // a float layer, or a product of two activations
	}
	dq := wv.Producer
	q, err := readDQ(dq)
	if err != nil {
		return err
	}
	var w *layerWeight
	switch n.OpType {
	case "MatMul":
		w, err = toNK(q, 0)
	case "Gemm":
		if t, _ := n.AttrInt("transA", 0); t != 0 {
			return fmt.Errorf("Gemm with transA: the layout has no transposed input")
		}
		a, _ := n.AttrFloat("alpha", 1)
		b, _ := n.AttrFloat("beta", 1)
		if a != 1 || b != 1 {
			return fmt.Errorf("Gemm with alpha %g, beta %g: the layout has no place for them", a, b)
		}
		kAxis := 0
		if t, _ := n.AttrInt("transB", 0); t != 0 {
			kAxis = 1
		}
		w, err = toNK(q, kAxis)
	default:
		w, err = convWeight(q)
	}
	if err != nil {
		return err
	}
	layer := Layer{Name: c.name(q.name, n, countLayers(wv) > 1), Node: n.Name, Op: n.OpType, GroupSize: w.groupSize}
	c.use(dq.Input(0), dq.Input(1), dq.Input(2))
	var bias *graph.Value
	if n.OpType != "MatMul" {
		bias = n.Input(2)
	}
	if in := n.Input(0); in != nil && in.Producer != nil && in.Producer.OpType == "DequantizeLinear" && in.Producer.Input(0) != nil && in.Producer.Input(0).Const == nil {
		return c.staticLayer(layer, w, in.Producer, bias)
	}
	if layer.Type, err = weightOnlyType(w.bits); err != nil {
		return err
	}
	if err := c.addWeight(layer, w); err != nil {
		return err
	}
	if bias != nil {
		b, err := floatBias(bias, w.n)
		if err != nil {
			return err
		}
		if err := c.add(layer.Name+SuffixBias, layer.Type, graph.Float32Tensor([]int{w.n}, b), "bias of "+n.Name); err != nil {
			return err
		}
		c.use(bias)
		if p := bias.Producer; p != nil {
			c.use(p.Inputs...)
		}
	}
	c.out.Layers = append(c.out.Layers, layer)
	return nil
}

// countLayers counts the MatMul/Gemm/Conv nodes that read v as their weight.
func countLayers(v *graph.Value) int {
	k := 0
	for _, n := range v.Consumers {
		if (n.OpType == "MatMul" || n.OpType == "Gemm" || n.OpType == "Conv") && n.Input(1) == v {
			k++
		}
	}
	return k
}

// addWeight records a layer's weight, weight_scale and weight_offset.
func (c *collector) addWeight(l Layer, w *layerWeight) error {
	codes, scale, offset := w.tensors()
	for _, t := range []Tensor{{l.Name + SuffixWeight, l.Type, codes}, {l.Name + SuffixWeightScale, l.Type, scale}, {l.Name + SuffixWeightOffset, l.Type, offset}} {
		if err := c.add(t.Name, t.Type, t.Data, "layer "+l.Node); err != nil {
			return err
		}
	}
	return nil
}

// floatBias reads a constant bias (float, or a dequantized integer) as n
// values; a single value is repeated.
func floatBias(v *graph.Value, n int) ([]float32, error) {
	var b []float32
	var err error
	if p := v.Producer; p != nil && isQuantizedConst(p) {
		q, err := readDQ(p)
		if err != nil {
			return nil, fmt.Errorf("bias: %w", err)
		}
		b = make([]float32, len(q.codes))
		for i, code := range q.codes {
			j := 0
			if len(q.scale) > 1 {
				j = i
			}
			b[i] = float32(code-q.offset[j]) * q.scale[j]
		}
	} else if b, err = floatConst(v, "bias"); err != nil {
		return nil, err
	}
	switch len(b) {
	case n:
		return b, nil
	case 1:
		r := make([]float32, n)
		for i := range r {
			r[i] = b[0]
		}
		return r, nil
	}
	return nil, fmt.Errorf("its bias has %d values for %d output channels", len(b), n)
}

// staticLayer writes a layer whose input has a calibrated 8-bit encoding in
// msModelSlim's W8A8 form, the integer pipeline
//
//	x_q = round(x / input_scale) + input_offset        (int8)
//	y   = (sum_k x_q * weight + quant_bias) * deq_scale
//
// with deq_scale = input_scale x weight_scale per output channel and
// quant_bias = round(bias / deq_scale) - input_offset x sum_k weight, so the
// input offset needs no separate term. uint8 inputs become int8 (codes and
// offset minus 128), which leaves x_q - input_offset unchanged.
func (c *collector) staticLayer(l Layer, w *layerWeight, in *graph.Node, bias *graph.Value) error {
	if w.groupSize > 0 {
		return fmt.Errorf("weights in groups of %d with a quantized input: W8A8 needs one weight scale per output channel", w.groupSize)
	}
	if !w.symmetric {
		return fmt.Errorf("weights with zero points and a quantized input: W8A8's quant_bias cannot absorb a weight offset (convert with symmetric weights)")
	}
	switch w.bits {
	case 8:
		l.Type = W8A8
	case 4:
		l.Type = W4A8
	default:
		return fmt.Errorf("its weights have %d bits: the layout holds 4- and 8-bit weights", w.bits)
	}
	xs, err := floatConst(in.Input(1), "input scale")
	if err != nil {
		return err
	}
	if len(xs) != 1 {
		return fmt.Errorf("its input has %d scales: W8A8 needs one per tensor", len(xs))
	}
	xo := int64(0)
	if z := in.Input(2); z != nil {
		if z.Const == nil || z.Const.Len() != 1 {
			return fmt.Errorf("its input zero point is not one constant")
		}
		xo = kernels.LoadInt64s(z.Const)[0]
		switch z.Const.DType {
		case graph.Uint8:
			xo -= 128
		case graph.Int8:
		default:
			return fmt.Errorf("its input is quantized to %s: W8A8 takes 8-bit activations", z.Const.DType.Short())
		}
	}
	deq := make([]float32, w.n)
	for i := range deq {
		deq[i] = xs[0] * w.scale[i]
	}
	qb := make([]int32, w.n)
	var bq []int64
	if bias != nil {
		if bq, err = quantBias(bias, deq); err != nil {
			return err
		}
		c.use(bias)
		if p := bias.Producer; p != nil {
			c.use(p.Inputs...)
		}
	}
	per := len(w.codes) / w.n
	for i := range qb {
		var sum int64
		for _, v := range w.codes[i*per : (i+1)*per] {
			sum += v
		}
		v := -xo * sum
		if bq != nil {
			v += bq[i]
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("quant_bias of output channel %d is %d, outside int32", i, v)
		}
		qb[i] = int32(v)
	}
	if err := c.addWeight(l, w); err != nil {
		return err
	}
	qbt, _ := graph.TensorOf(graph.Int32, []int{w.n}, qb)
	for _, t := range []Tensor{
		{l.Name + SuffixInputScale, l.Type, graph.Float32Tensor([]int{1}, []float32{xs[0]})},
		{l.Name + SuffixInputOffset, l.Type, graph.Float32Tensor([]int{1}, []float32{float32(xo)})},
		{l.Name + SuffixDeqScale, l.Type, graph.Float32Tensor([]int{w.n}, deq)},
		{l.Name + SuffixQuantBias, l.Type, qbt},
	} {
		if err := c.add(t.Name, t.Type, t.Data, "layer "+l.Node); err != nil {
			return err
		}
	}
	c.out.Layers = append(c.out.Layers, l)
	return nil
}

// quantBias is the bias in units of deq_scale: the model's int32 codes when
// its bias already has that scale and no zero point (onnxq writes it so),
// else the dequantized or float bias divided by deq_scale, rounded half to
// even.
func quantBias(bias *graph.Value, deq []float32) ([]int64, error) {
	if p := bias.Producer; p != nil && isQuantizedConst(p) && p.Input(0).Const.DType == graph.Int32 {
		q, err := readDQ(p)
		if err != nil {
			return nil, fmt.Errorf("bias: %w", err)
		}
		same := len(q.codes) == len(deq)
		for i := 0; same && i < len(deq); i++ {
			j := 0
			if len(q.scale) > 1 {
				j = i
			}
			same = q.scale[j] == deq[i] && q.offset[j] == 0
		}
		if same {
			return q.codes, nil
		}
	}
	b, err := floatBias(bias, len(deq))
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(b))
	for i, v := range b {
		out[i] = int64(math.RoundToEven(float64(v) / float64(deq[i])))
	}
	return out, nil
}

// nbitsLayer reads ONNX Runtime's MatMulNBits: B [N][k_blocks][blob] packed
// little nibble first, scales [N * k_blocks], optional packed zero points
// (default 2^(bits-1)); codes are unsigned, so they and the zero points are
// shifted to signed.
func (c *collector) nbitsLayer(n *graph.Node) error {
	for i := 4; i < len(n.Inputs); i++ {
		if n.Input(i) != nil {
			return fmt.Errorf("input %d (g_idx or bias) is not part of the layout", i)
		}
	}
	k, _ := n.AttrInt("K", 0)
	nn, _ := n.AttrInt("N", 0)
	nb, _ := n.AttrInt("bits", 4)
	block, _ := n.AttrInt("block_size", 0)
	if nb != 4 && nb != 8 {
		return fmt.Errorf("%d-bit weights: the layout holds 4- and 8-bit weights", nb)
	}
	if k <= 0 || nn <= 0 || block <= 0 {
		return fmt.Errorf("attributes K %d, N %d, block_size %d are not all positive", k, nn, block)
	}
	bv, sv, zv := n.Input(1), n.Input(2), n.Input(3)
	if bv == nil || bv.Const == nil || bv.Const.DType != graph.Uint8 {
		return fmt.Errorf("its weight B is not a uint8 constant")
	}
	kb := (int(k) + int(block) - 1) / int(block)
	blob := int(block) * int(nb) / 8
	if bv.Const.Len() != int(nn)*kb*blob {
		return fmt.Errorf("B has %d bytes, K %d, N %d, block %d need %d", bv.Const.Len(), k, nn, block, int(nn)*kb*blob)
	}
	scale, err := floatConst(sv, "scales")
	if err != nil {
		return err
	}
	if len(scale) != int(nn)*kb {
		return fmt.Errorf("%d scales for N %d x %d blocks", len(scale), nn, kb)
	}
	half := int64(1) << (nb - 1)
	unpack := func(b []uint8, i int) int64 { // element i of a packed row
		if nb == 8 {
			return int64(b[i])
		}
		return int64(b[i/2]>>(4*(i%2))) & 0xF
	}
	offset := make([]int64, len(scale))
	if zv != nil {
		if zv.Const == nil || zv.Const.DType != graph.Uint8 {
			return fmt.Errorf("its zero points are not a packed uint8 constant")
		}
		per := (kb*int(nb) + 7) / 8
		zb := zv.Const.Data().([]uint8)
		if len(zb) != int(nn)*per {
			return fmt.Errorf("%d zero point bytes for N %d x %d blocks", len(zb), nn, kb)
		}
		for col := 0; col < int(nn); col++ {
			for b := 0; b < kb; b++ {
				offset[col*kb+b] = unpack(zb[col*per:], b) - half
			}
		}
	}
	raw := bv.Const.Data().([]uint8)
	w := &layerWeight{codes: make([]int64, int(nn)*int(k)), shape: []int{int(nn), int(k)}, n: int(nn), bits: int(nb),
		scale: scale, offset: offset, scaleShape: []int{int(nn), kb}, groupSize: int(block),
		name: strings.TrimSuffix(bv.Name, "_dequantized_nbits_B")}
	if w.name == bv.Name {
		w.name = ""
	}
	for col := 0; col < int(nn); col++ {
		for b := 0; b < kb; b++ {
			row := raw[(col*kb+b)*blob:]
			for j := 0; j < int(block); j++ {
				if ki := b*int(block) + j; ki < int(k) { // padding past K is dropped
					w.codes[col*int(k)+ki] = unpack(row, j) - half
				}
			}
		}
	}
	if kb == 1 { // one block per column: per channel
		w.scaleShape, w.groupSize = []int{int(nn)}, 0
	}
	w.finish()
	l := Layer{Name: c.name(w.name, n, false), Node: n.Name, Op: n.OpType, GroupSize: w.groupSize}
	if l.Type, err = weightOnlyType(w.bits); err != nil {
		return err
	}
	c.use(bv, sv, zv)
	if err := c.addWeight(l, w); err != nil {
		return err
	}
	c.out.Layers = append(c.out.Layers, l)
	return nil
}

// matMulInteger reads onnxq's standard dynamic form,
// DynamicQuantizeLinear -> MatMulInteger(x_q, W, x_zp[, w_zp]) -> Cast ->
// Mul(x_scale x w_scale) [-> Add(bias)], finding the weight scale and bias
// on the nodes after it, or its per-token form (perTokenLayer).
func (c *collector) matMulInteger(n *graph.Node) error {
	if a := n.Input(0); a == nil || a.Producer == nil || a.Producer.OpType != "DynamicQuantizeLinear" {
		if tq := perTokenQuant(a); tq != nil {
			return c.perTokenLayer(n, tq)
		}
		return fmt.Errorf("its input is not quantized by a DynamicQuantizeLinear or onnxq's per-token quantizer (not onnxq's dynamic form)")
	}
	cast := soleConsumer(n.Output(), "Cast")
	var mul *graph.Node
	if cast != nil {
		mul = soleConsumer(cast.Output(), "Mul")
	}
	var ws *graph.Value
	if mul != nil {
		for _, in := range mul.Inputs {
			if p := in.Producer; in != cast.Output() && p != nil && p.OpType == "Mul" {
				for _, s := range p.Inputs {
					if s.Const != nil {
						ws = s
					}
				}
			}
		}
	}
	if ws == nil {
		return fmt.Errorf("its weight scale was not found (onnxq writes MatMulInteger -> Cast -> Mul(input scale x weight scale))")
	}
	var bias *graph.Value
	if add := soleConsumer(mul.Output(), "Add"); add != nil {
		for _, in := range add.Inputs {
			if in.Const != nil {
				bias = in
			}
		}
	}
	return c.dynamicLayer(n, n.Input(1), ws, n.Input(3), bias)
}

// soleConsumer is v's only consumer when it is an op of this type.
func soleConsumer(v *graph.Value, op string) *graph.Node {
	if v == nil || len(v.Consumers) != 1 || v.Consumers[0].OpType != op {
		return nil
	}
	return v.Consumers[0]
}

// dynamicLayer writes an 8-bit [K, N] weight whose input is quantized at run
// time (W8A8_DYNAMIC): weight, weight_scale, weight_offset and the float
// bias, if any.
func (c *collector) dynamicLayer(n *graph.Node, wv, sv, zv, bias *graph.Value) error {
	if wv == nil || wv.Const == nil {
		return fmt.Errorf("its weight is not a constant")
	}
	nb, unsigned, ok := intBits(wv.Const.DType)
	if !ok || nb != 8 {
		return fmt.Errorf("its weight is %s, not 8-bit", wv.Const.DType.Short())
	}
	scale, err := floatConst(sv, "weight scale")
	if err != nil {
		return err
	}
	q := &qweight{codes: kernels.LoadInt64s(wv.Const), shape: wv.Const.Shape, bits: nb, scale: scale, offset: make([]int64, len(scale)), axis: 1}
	if zv != nil {
		if zv.Const == nil || zv.Const.Len() != len(scale) {
			return fmt.Errorf("its weight zero point is not a constant with one value per scale")
		}
		q.offset = kernels.LoadInt64s(zv.Const)
	} else if unsigned {
		return fmt.Errorf("uint8 weight without zero point") // MatMulInteger's default is 0; onnxq always writes it
	}
	if unsigned {
		for i := range q.codes {
			q.codes[i] -= 128
		}
		for i := range q.offset {
			q.offset[i] -= 128
		}
	}
	w, err := toNK(q, 0)
	if err != nil {
		return err
	}
	l := Layer{Name: strings.TrimSuffix(wv.Name, "_weight_quantized"), Node: n.Name, Op: n.OpType, Type: W8A8Dynamic}
	if l.Name == wv.Name || l.Name == "" {
		l.Name = layerName("", n)
	}
	c.use(wv, sv, zv)
	if err := c.addWeight(l, w); err != nil {
		return err
	}
	if bias != nil {
		b, err := floatBias(bias, w.n)
		if err != nil {
			return err
		}
		c.use(bias)
		if err := c.add(l.Name+SuffixBias, l.Type, graph.Float32Tensor([]int{w.n}, b), "bias of "+n.Name); err != nil {
			return err
		}
	}
	c.out.Layers = append(c.out.Layers, l)
	return nil
}

// otherWeight writes a dequantized constant no layer read (an embedding
// table under a Gather, a ConvTranspose weight) as a weight-only weight in
// the model's own layout and scale shape. A 16- or 32-bit one is written
// dequantized, as FLOAT. One feeding a node that also reads a quantized
// activation would be an integer layer the layout cannot express: an error.
func (c *collector) otherWeight(dq *graph.Node) error {
	for _, n := range dq.Output().Consumers {
		for _, in := range n.Inputs {
			if in != nil && in.Producer != nil && in.Producer.OpType == "DequantizeLinear" && in.Producer.Input(0) != nil && in.Producer.Input(0).Const == nil {
				return fmt.Errorf("%s %q reads it with a quantized input: export writes MatMul, Gemm and Conv layers", n.OpType, n.Name)
			}
		}
	}
	q, err := readDQ(dq)
	if err != nil {
		return err
	}
	c.use(dq.Input(0), dq.Input(1), dq.Input(2))
	typ, err := weightOnlyType(q.bits)
	if err != nil { // 16/32-bit: dequantized, float
		f := make([]float32, len(q.codes))
		for i, code := range q.codes {
			f[i] = float32(code-q.offset[scaleIndex(q, i)]) * q.scale[scaleIndex(q, i)]
		}
		return c.add(q.name, Float, graph.Float32Tensor(q.shape, f), "dequantized constant "+dq.Input(0).Name)
	}
	w := &layerWeight{codes: q.codes, shape: q.shape, bits: q.bits, scale: q.scale, offset: q.offset, scaleShape: q.scaleShape, groupSize: q.block, name: q.name}
	w.finish()
	l := Layer{Name: layerName(q.name, nil), Node: dq.Name, Op: dq.OpType, Type: typ, GroupSize: q.block}
	if err := c.addWeight(l, w); err != nil {
		return err
	}
	c.out.Layers = append(c.out.Layers, l)
	return nil
}

// scaleIndex is the index of the scale of element i of q (ONNX
// DequantizeLinear: per tensor, per axis or in blocks along the axis).
func scaleIndex(q *qweight, i int) int {
	if len(q.scale) == 1 && q.block == 0 {
		return 0
	}
	// Decompose i into its coordinate along the axis and the rest.
	inner := 1
	for _, d := range q.shape[q.axis+1:] {
		inner *= d
	}
	dim := q.shape[q.axis]
	outer := i / (inner * dim)
	a := (i / inner) % dim
	rest := i % inner
	if q.block == 0 {
		return a
	}
	g := q.scaleShape[q.axis]
	return (outer*g+a/q.block)*inner + rest
}
