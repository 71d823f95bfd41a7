package export

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// qweight is a quantized constant as signed codes with its scales and
// offsets, in the layout its DequantizeLinear reads it (axis, block_size).
// Unsigned codes are shifted by 2^(bits-1), codes and offsets alike, so
// dequantization (code - offset) x scale is unchanged: msModelSlim's
// weights are signed.
type qweight struct {
	name   string // the weight's original name
	codes  []int64
	shape  []int
	bits   int
	scale  []float32
	offset []int64 // one per scale
	// scaleShape is the scale's shape in the model; axis and block the
	// DequantizeLinear's (block 0: per tensor or per axis).
	scaleShape  []int
	axis, block int
}

// intBits is the width of the integer types a DequantizeLinear reads, and
// whether they are unsigned.
func intBits(dt graph.DataType) (int, bool, bool) {
	switch dt {
	case graph.Int4:
		return 4, false, true
	case graph.Uint4:
		return 4, true, true
	case graph.Int8:
		return 8, false, true
	case graph.Uint8:
		return 8, true, true
	case graph.Int16:
		return 16, false, true
	case graph.Uint16:
		return 16, true, true
	case graph.Int32:
		return 32, false, true
	}
	return 0, false, false
}

// isQuantizedConst reports whether dq dequantizes an integer constant.
func isQuantizedConst(dq *graph.Node) bool {
	if dq == nil || dq.OpType != "DequantizeLinear" || !graph.IsStandardDomain(dq.Domain) {
		return false
	}
	x := dq.Input(0)
	if x == nil || x.Const == nil {
		return false
	}
	_, _, ok := intBits(x.Const.DType)
	return ok
}

// floatConst reads a float constant of any float type as float32.
func floatConst(v *graph.Value, what string) ([]float32, error) {
	if v == nil || v.Const == nil {
		return nil, fmt.Errorf("its %s is not a constant", what)
	}
	f, err := v.Const.AsFloat32()
	if err != nil || !v.Const.DType.IsFloat() {
		return nil, fmt.Errorf("its %s is %s, not a float", what, v.Const.DType.Short())
	}
	return f, nil
}

// readDQ reads the integer constant a DequantizeLinear reads, with its
// scale and zero point.
func readDQ(dq *graph.Node) (*qweight, error) {
	x, s, z := dq.Input(0), dq.Input(1), dq.Input(2)
	nb, unsigned, _ := intBits(x.Const.DType)
	q := &qweight{
		name:  strings.TrimSuffix(x.Name, "_quantized"),
		codes: kernels.LoadInt64s(x.Const),
		shape: x.Const.Shape,
		bits:  nb,
	}
	var err error
	if q.scale, err = floatConst(s, "scale"); err != nil {
		return nil, err
	}
	q.scaleShape = s.Const.Shape
	q.offset = make([]int64, len(q.scale))
	if z != nil {
		if z.Const == nil {
			return nil, fmt.Errorf("its zero point is not a constant")
		}
		if z.Const.Len() != len(q.scale) {
			return nil, fmt.Errorf("%d zero points for %d scales", z.Const.Len(), len(q.scale))
		}
		q.offset = kernels.LoadInt64s(z.Const)
	}
	if unsigned {
		half := int64(1) << (nb - 1)
		for i := range q.codes {
			q.codes[i] -= half
		}
		for i := range q.offset {
			q.offset[i] -= half
		}
	}
	axis, _ := dq.AttrInt("axis", 1)
	block, _ := dq.AttrInt("block_size", 0)
	r := len(q.shape)
	if axis < 0 {
		axis += int64(r)
	}
	q.axis, q.block = int(axis), int(block)
	switch {
	case len(q.scale) == 1 && q.block == 0:
	case r == 0 || q.axis < 0 || q.axis >= r:
		return nil, fmt.Errorf("axis %d is outside its rank-%d weight", axis, r)
	case q.block > 0:
		want := append([]int(nil), q.shape...)
		want[q.axis] = (q.shape[q.axis] + q.block - 1) / q.block
		if !slices.Equal(q.scaleShape, want) {
			return nil, fmt.Errorf("scale shape %v does not fit weight %v in blocks of %d along axis %d", q.scaleShape, q.shape, q.block, q.axis)
		}
	case len(q.scale) != q.shape[q.axis]:
		return nil, fmt.Errorf("%d scales along axis %d of weight %v", len(q.scale), q.axis, q.shape)
	}
	return q, nil
}

// layerWeight is a weight in the layer layout: codes [N, K] (or a Conv's
// own [N, C/g, kh, kw]), scales and offsets [N] or, per group, [N, G].
type layerWeight struct {
	codes        []int64
	shape        []int
	scale        []float32
	offset       []int64
	scaleShape   []int
	n, groupSize int
	bits         int
	name         string
	symmetric    bool // every offset is 0
}

// toNK turns a 2-D weight whose reduction axis is kAxis (0 for MatMul's
// [K, N], 1 for Gemm's transB [N, K]) into msModelSlim's [N, K] layout
// (PyTorch's Linear weight), with one scale per output channel or per
// group of K.
func toNK(q *qweight, kAxis int) (*layerWeight, error) {
	if len(q.shape) != 2 {
		return nil, fmt.Errorf("its weight is %v, not 2-D", q.shape)
	}
	k, n := q.shape[kAxis], q.shape[1-kAxis]
	at := func(ki, ni int) int { // index in the model's layout
		if kAxis == 0 {
			return ki*n + ni
		}
		return ni*k + ki
	}
	w := &layerWeight{codes: make([]int64, n*k), shape: []int{n, k}, n: n, bits: q.bits, name: q.name}
	for ni := 0; ni < n; ni++ {
		for ki := 0; ki < k; ki++ {
			w.codes[ni*k+ki] = q.codes[at(ki, ni)]
		}
	}
	switch {
	case len(q.scale) == 1 && q.block == 0:
		w.expand(q.scale[0], q.offset[0])
	case q.block == 0 && q.axis == 1-kAxis:
		w.scale, w.offset, w.scaleShape = q.scale, q.offset, []int{n}
	case q.block > 0 && q.axis == kAxis:
		g := (k + q.block - 1) / q.block
		w.scale, w.offset = make([]float32, n*g), make([]int64, n*g)
		for ni := 0; ni < n; ni++ {
			for gi := 0; gi < g; gi++ {
				i := gi*n + ni // scale [G, N] for MatMul
				if kAxis == 1 {
					i = ni*g + gi // [N, G] for Gemm transB
				}
				w.scale[ni*g+gi], w.offset[ni*g+gi] = q.scale[i], q.offset[i]
			}
		}
		w.scaleShape, w.groupSize = []int{n, g}, q.block
		if g == 1 { // a block of K or more: one scale per output channel
			w.scaleShape, w.groupSize = []int{n}, 0
		}
	default:
		return nil, fmt.Errorf("its weight scales run along axis %d (block size %d) of %v, not per output channel or per group of K", q.axis, q.block, q.shape)
	}
	w.finish()
	return w, nil
}

// convWeight keeps a Conv weight's own [N, C/g, kh, kw] layout, which
// already has the output channels first; it needs one scale per output
// channel (or one per tensor, repeated).
func convWeight(q *qweight) (*layerWeight, error) {
	if len(q.shape) < 3 {
		return nil, fmt.Errorf("its weight is %v, not [N, C, ...]", q.shape)
	}
	n := q.shape[0]
	w := &layerWeight{codes: q.codes, shape: q.shape, n: n, bits: q.bits, name: q.name}
	switch {
	case len(q.scale) == 1 && q.block == 0:
		w.expand(q.scale[0], q.offset[0])
	case q.block == 0 && q.axis == 0:
		w.scale, w.offset, w.scaleShape = q.scale, q.offset, []int{n}
	default:
		return nil, fmt.Errorf("its weight scales run along axis %d (block size %d), not per output channel", q.axis, q.block)
	}
	w.finish()
	return w, nil
}

// expand repeats a per-tensor scale per output channel: the layout has one
// scale per channel.
func (w *layerWeight) expand(s float32, o int64) {
	w.scale, w.offset, w.scaleShape = make([]float32, w.n), make([]int64, w.n), []int{w.n}
	for i := range w.scale {
		w.scale[i], w.offset[i] = s, o
	}
}

func (w *layerWeight) finish() {
	w.symmetric = true
	for _, o := range w.offset {
		w.symmetric = w.symmetric && o == 0
	}
}

// weightType is the type of a weight-only layer with this weight.
func weightOnlyType(nb int) (Type, error) {
	switch nb {
	case 8:
		return W8A16, nil
	case 4:
		return W4A16, nil
	}
	return "", fmt.Errorf("its weights have %d bits: the layout holds 4- and 8-bit weights", nb)
}

// tensors are the layer's weight, weight_scale and weight_offset: codes as
// int8 (4-bit codes too, one per byte, values in [-8, 7], as msModelSlim
// stores int4), scales and offsets float32 (msModelSlim's offset has the
// scale's type).
func (w *layerWeight) tensors() (codes, scale, offset *graph.Tensor) {
	c := make([]int8, len(w.codes))
	for i, v := range w.codes {
		c[i] = int8(v)
	}
	codes, _ = graph.TensorOf(graph.Int8, w.shape, c)
	o := make([]float32, len(w.offset))
	for i, v := range w.offset {
		o[i] = float32(v)
	}
	scale = graph.Float32Tensor(w.scaleShape, append([]float32(nil), w.scale...))
	offset = graph.Float32Tensor(w.scaleShape, o)
	return codes, scale, offset
}
