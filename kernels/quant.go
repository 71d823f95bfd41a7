package kernels

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// QuantRange is the saturation range of a quantized integer type.
func QuantRange(dt graph.DataType) (lo, hi float64, ok bool) {
	switch dt {
	case graph.Uint8:
		return 0, 255, true
	case graph.Int8:
		return -128, 127, true
	case graph.Uint16:
		return 0, 65535, true
	case graph.Int16:
		return -32768, 32767, true
	case graph.Uint4:
		return 0, 15, true
	case graph.Int4:
		return -8, 7, true
	case graph.Int32:
		return math.MinInt32, math.MaxInt32, true
	}
	return 0, 0, false
}

// QuantizeValue is ONNX QuantizeLinear for one value: round half to even of
// x / scale (in float32, as the reference does), plus the zero point, saturated.
func QuantizeValue(x, scale float32, zp int32, lo, hi float64) int32 {
	q := math.RoundToEven(float64(x/scale)) + float64(zp)
	return int32(max(lo, min(hi, q)))
}

// paramIndex maps a flat element index of a tensor to the index of its scale and
// zero point: per tensor (0), per axis, or per block along the axis.
type paramIndex struct {
	mode         int // 0 tensor, 1 axis, 2 blocked
	inner, dim   int // elements after the axis; the axis length
	block        int
	blocksPerDim int
}

func newParamIndex(x, scale *graph.Tensor, axis int64, blockSize int64) (paramIndex, error) {
	if scale.Len() == 1 && scale.Rank() <= 1 && blockSize == 0 {
		return paramIndex{}, nil
	}
	ax, err := normAxis(axis, x.Rank())
	if err != nil {
		return paramIndex{}, err
	}
	p := paramIndex{inner: graph.Numel(x.Shape[ax+1:]), dim: x.Shape[ax]}
	if blockSize <= 0 {
		if scale.Rank() != 1 || scale.Len() != p.dim {
			return p, fmt.Errorf("per-axis scale has shape %v, want [%d] (axis %d of %v)", scale.Shape, p.dim, ax, x.Shape)
		}
		p.mode = 1
		return p, nil
	}
	p.mode, p.block = 2, int(blockSize)
	p.blocksPerDim = (p.dim + p.block - 1) / p.block
	want := append([]int(nil), x.Shape...)
	want[ax] = p.blocksPerDim
	if fmt.Sprint(want) != fmt.Sprint(scale.Shape) {
		return p, fmt.Errorf("blocked scale has shape %v, want %v (block size %d on axis %d)", scale.Shape, want, blockSize, ax)
	}
	return p, nil
}

func (p paramIndex) of(i int) int {
	switch p.mode {
	case 1:
		return (i / p.inner) % p.dim
	case 2:
		outer := i / (p.inner * p.dim)
		a := (i / p.inner) % p.dim
		in := i % p.inner
		return (outer*p.blocksPerDim+a/p.block)*p.inner + in
	}
	return 0
}

// zeroPoints reads a zero-point tensor as int32 values (nil input: zeros).
func zeroPoints(zp *graph.Tensor, n int) ([]int32, graph.DataType, error) {
	if zp == nil {
		return make([]int32, n), graph.Undefined, nil
	}
	if zp.Len() != n {
		return nil, 0, fmt.Errorf("zero point has %d values, scale has %d", zp.Len(), n)
	}
	v := readInt64s(zp)
	out := make([]int32, n)
	for i, x := range v {
		out[i] = int32(x)
	}
	if !zp.DType.IsInteger() {
		return nil, 0, fmt.Errorf("zero point type %s is not supported", zp.DType.Short())
	}
	return out, zp.DType, nil
}

// qparams are the scale and zero-point inputs of QuantizeLinear and
// DequantizeLinear, with the map from an element of x to its parameters.
type qparams struct {
	scale  []float32
	zp     []int32
	zpType graph.DataType // Undefined without a zero-point input
	at     paramIndex
}

func readQParams(in []*graph.Tensor, axis, block int64) (*qparams, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, scale := in[0], in[1]
	var zpT *graph.Tensor
	if len(in) > 2 {
		zpT = in[2]
	}
	ss, err := scale.AsFloat32()
	if err != nil {
		return nil, err
	}
	pi, err := newParamIndex(x, scale, axis, block)
	if err != nil {
		return nil, err
	}
	zps, zdt, err := zeroPoints(zpT, len(ss))
	if err != nil {
		return nil, err
	}
	return &qparams{scale: ss, zp: zps, zpType: zdt, at: pi}, nil
}

func newQuantizeLinear(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 1)
	block := a.Int("block_size", 0)
	outDT := graph.DataType(a.Int("output_dtype", 0))
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		qp, err := readQParams(in, axis, block)
		if err != nil {
			return nil, err
		}
		x := in[0]
		xs, err := x.AsFloat32()
		if err != nil {
			return nil, err
		}
		ss, zps, zdt, pi := qp.scale, qp.zp, qp.zpType, qp.at
		dt := graph.Uint8
		switch {
		case zdt != graph.Undefined:
			dt = zdt
			if outDT != 0 && outDT != zdt {
				return nil, fmt.Errorf("output_dtype %s differs from the zero point's %s", outDT.Short(), zdt.Short())
			}
		case outDT != 0:
			dt = outDT
		}
		lo, hi, ok := QuantRange(dt)
		if !ok || dt == graph.Int32 {
			return nil, fmt.Errorf("QuantizeLinear to %s is not supported", dt.Short())
		}
		out := ctx.Empty(dt, x.Shape) // every branch below writes every element
		threads := threadsFor(ctx, len(xs), 1<<15)
		switch d := out.Data().(type) {
		case []uint8:
			quantizeInto(d, xs, qp, lo, hi, threads)
		case []int8:
			quantizeInto(d, xs, qp, lo, hi, threads)
		case []uint16:
			quantizeInto(d, xs, qp, lo, hi, threads)
		case []int16:
			quantizeInto(d, xs, qp, lo, hi, threads)
		default:
			q := make([]int64, len(xs))
			parallelFor(threads, len(xs), func(s, e int) {
				for i := s; i < e; i++ {
					k := pi.of(i)
					q[i] = int64(QuantizeValue(xs[i], ss[k], zps[k], lo, hi))
				}
			})
			StoreInt64s(out, q)
		}
		return one(out), nil
	}), nil
}

// quantizeInto is QuantizeLinear into a typed output, with a per-tensor
// loop free of the parameter lookup (the common case, and calibration-time
// compare and sensitivity run it on every activation).
func quantizeInto[T uint8 | int8 | uint16 | int16](dst []T, xs []float32, qp *qparams, lo, hi float64, threads int) {
	parallelFor(threads, len(xs), func(s, e int) {
		if qp.at.mode == 0 {
			// In float32 vectors (vec.QuantizeRound: the float64 formula's
			// values), a block at a time, then converted as QuantizeValue
			// converts (through int32).
			sc, zp := qp.scale[0], float32(qp.zp[0])
			switch d := any(dst).(type) {
			case []uint8:
				vec.Quantize8(d[s:e], xs[s:e], sc, zp, float32(lo), float32(hi))
				return
			case []int8:
				vec.Quantize8(d[s:e], xs[s:e], sc, zp, float32(lo), float32(hi))
				return
			}
			var buf [1024]float32
			for i := s; i < e; i += len(buf) {
				t := buf[:min(len(buf), e-i)]
				vec.QuantizeRound(t, xs[i:i+len(t)], sc, zp, float32(lo), float32(hi))
				for k, v := range t {
					dst[i+k] = T(int32(v))
				}
			}
			return
		}
		for i := s; i < e; i++ {
			k := qp.at.of(i)
			dst[i] = T(QuantizeValue(xs[i], qp.scale[k], qp.zp[k], lo, hi))
		}
	})
}

// dequantizeFrom is DequantizeLinear from a typed input.
func dequantizeFrom[T uint8 | int8 | uint16 | int16 | int32](vals []float32, src []T, qp *qparams, threads int) {
	parallelFor(threads, len(src), func(s, e int) {
		if qp.at.mode == 0 {
			vec.Dequantize(vals[s:e], src[s:e], qp.zp[0], qp.scale[0])
			return
		}
		if qp.at.mode == 1 {
			// Per axis: runs of inner elements share their parameters (a
			// conv weight's output channel), taken a run at a time rather
			// than looked up per element (ResNet-50's weights folded at
			// session compile: 0.43 s of a convert's 2.1).
			in, dim := qp.at.inner, qp.at.dim
			k, c := (s/in)%dim, s%in
			for i := s; i < e; {
				j := min(e, i+in-c)
				if j-i >= 8 {
					vec.Dequantize(vals[i:j], src[i:j], qp.zp[k], qp.scale[k])
				} else {
					zp, sc := qp.zp[k], qp.scale[k]
					for t := i; t < j; t++ {
						vals[t] = float32(int32(src[t])-zp) * sc
					}
				}
				i, c = j, 0
				if k++; k == dim {
					k = 0
				}
			}
			return
		}
		for i := s; i < e; i++ {
			k := qp.at.of(i)
			vals[i] = float32(int32(src[i])-qp.zp[k]) * qp.scale[k]
		}
	})
}

func newDequantizeLinear(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 1)
	block := a.Int("block_size", 0)
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		qp, err := readQParams(in, axis, block)
		if err != nil {
			return nil, err
		}
		x, scale := in[0], in[1]
		if _, _, ok := QuantRange(x.DType); !ok {
			return nil, fmt.Errorf("DequantizeLinear of %s is not supported", x.DType.Short())
		}
		ss, zps, zdt, pi := qp.scale, qp.zp, qp.zpType, qp.at
		if zdt != graph.Undefined && zdt != x.DType {
			return nil, fmt.Errorf("zero point type %s differs from input type %s", zdt.Short(), x.DType.Short())
		}
		outDT := graph.Float
		if scale.DType == graph.Float16 || scale.DType == graph.BFloat16 {
			outDT = scale.DType
		}
		// From the run's pool: a buffer made here would be handed to the pool
		// when the run frees it, and pile up there, since nothing here takes
		// one back.
		out := ctx.Float32(x.Shape)
		vals := out.Float32s()
		threads := threadsFor(ctx, len(vals), 1<<15)
		switch d := x.Data().(type) {
		case []uint8:
			dequantizeFrom(vals, d, qp, threads)
		case []int8:
			dequantizeFrom(vals, d, qp, threads)
		case []uint16:
			dequantizeFrom(vals, d, qp, threads)
		case []int16:
			dequantizeFrom(vals, d, qp, threads)
		case []int32:
			dequantizeFrom(vals, d, qp, threads)
		default:
			xv := readInt64s(x)
			parallelFor(threads, len(xv), func(s, e int) {
				for i := s; i < e; i++ {
					k := pi.of(i)
					vals[i] = float32(int32(xv[i])-zps[k]) * ss[k]
				}
			})
		}
		if outDT != graph.Float {
			c, err := castTensor(out, outDT)
			if err != nil {
				return nil, err
			}
			out = c
		}
		return one(out), nil
	}), nil
}

func newDynamicQuantizeLinear(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "DynamicQuantizeLinear input"); err != nil {
			return nil, err
		}
		xs := x.Float32s()
		// The range always holds 0 (so 0 quantizes exactly); NaNs are
		// left out of it and quantize to 0.
		lo, hi := vec.MinMax(xs)
		lo, hi = min(lo, 0), max(hi, 0)
		scale := (hi - lo) / 255
		zp := int32(0)
		if scale != 0 {
			zp = int32(max(0, min(255, math.RoundToEven(float64(0-lo/scale)))))
		}
		out := ctx.Empty(graph.Uint8, x.Shape)
		d := out.Data().([]uint8)
		if scale != 0 && !math.IsInf(float64(scale), 0) {
			parallelFor(threadsFor(ctx, len(xs), 1<<15), len(xs), func(s, e int) {
				vec.Quantize8(d[s:e], xs[s:e], scale, float32(zp), 0, 255)
			})
		} else {
			clear(d)
		}
		zpT := graph.NewTensor(graph.Uint8, nil)
		zpT.Data().([]uint8)[0] = uint8(zp)
		return []*graph.Tensor{out, graph.Float32Tensor(nil, []float32{scale}), zpT}, nil
	}), nil
}

// scaleAccumulators turns the int32 accumulators of an [..., n] integer
// product into float: times the activation's scale and the weight's scale
// (one, or one per column), plus the bias when given. The epilogue of ORT's
// integer-to-float contrib ops.
func scaleAccumulators(ctx *Context, acc []int32, shape []int, aScale float32, wScales, bias []float32, n int) *graph.Tensor {
	mul := make([]float32, n)
	for j := range mul {
		mul[j] = aScale * wScales[min(j, len(wScales)-1)]
	}
	out := ctx.Float32(shape)
	y := out.Float32s()
	for r := 0; r < len(acc); r += n {
		row, yr := acc[r:r+n], y[r:r+n]
		for j, v := range row {
			yr[j] = float32(v) * mul[j]
		}
		if bias != nil {
			for j, b := range bias {
				yr[j] += b
			}
		}
	}
	return out
}

func newMatMulInteger(ni *NodeInfo) (Kernel, error) {
	im, err := newIntMatMul(ni, "MatMulInteger", 1, 3)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		var azp, bzp *graph.Tensor
		if len(in) > 2 {
			azp = in[2]
		}
		if len(in) > 3 {
			bzp = in[3]
		}
		out, err := im.run(ctx, a, azp, b, bzp)
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

// intConvWeights are a ConvInteger's or QLinearConv's constant weights
// less their constant zero points, in float32, made once (nil when either
// is fed at run time): per output channel zero points took a tenth of a
// QLinearConv's run to take off.
type intConvWeights struct {
	w   *graph.Tensor
	wc  []float32
	max float32                         // the largest magnitude in wc
	b8  *convB8Weights                  // for igemm, when it runs the convolution
	dw  atomic.Pointer[depthwiseParams] // the depthwise kernels' blocked weights
}

// newIntConvWeights centers node ni's constant weights (input wIn, zero
// point wzpIn), or returns nil.
func newIntConvWeights(ni *NodeInfo, wIn, wzpIn, group int) *intConvWeights {
	w := ni.Const(wIn)
	if w == nil || w.Rank() < 3 {
		return nil
	}
	var wzp *graph.Tensor
	if wzpIn < len(ni.Node.Inputs) && ni.Node.Input(wzpIn) != nil {
		if wzp = ni.Const(wzpIn); wzp == nil {
			return nil
		}
	}
	if useIgemm && group == 1 {
		kh, kw := 1, w.Shape[w.Rank()-1]
		if w.Rank() == 4 {
			kh = w.Shape[2]
		}
		if w.Rank() > 4 {
			return nil
		}
		b8, err := packConvB8(w, wzp, w.Shape[0], w.Shape[1], kh, kw)
		if err != nil {
			return nil // the run reports it
		}
		return &intConvWeights{w: w, b8: b8}
	}
	per := graph.Numel(w.Shape[1:])
	wc := make([]float32, w.Len())
	if centerInto(wc, w, wzp, func(i int) int { return i / per }) != nil {
		return nil // the run reports it
	}
	return &intConvWeights{w: w, wc: wc, max: maxAbs(wc)}
}

// intConv is ConvInteger's exact int32 convolution: x and w less their zero
// points (x's per tensor, w's per tensor or per output channel) in float32,
// x laid out by im2col (the padding 0, which is the zero point less
// itself), and each group's product taken by intGemm. The result is an
// int32 tensor from ctx's pool, or with q (QLinearConv) the sums
// requantized by q, one multiplier a channel.
func intConv(ctx *Context, p *convParams, x, w *graph.Tensor, xzp, wzp *graph.Tensor, cw *intConvWeights, bias []int32, q *requantSpec) (*graph.Tensor, error) {
	acc, err := intConvSums(ctx, p, x, w, xzp, wzp, cw, bias, q)
	if err != nil || q == nil || acc.DType != graph.Int32 {
		return acc, err
	}
	defer recycleTemp(ctx, acc)
	plane := graph.Numel(acc.Shape[2:])
	return q.apply(ctx, graph.Elems[int32](acc), plane, acc.Shape), nil
}

// intConvSums is intConv's int32 sums; igemm's path requantizes them
// itself, with q given, as each piece is made (its result then has q's
// type).
func intConvSums(ctx *Context, p *convParams, x, w *graph.Tensor, xzp, wzp *graph.Tensor, cw *intConvWeights, bias []int32, q *requantSpec) (*graph.Tensor, error) {
	xs, err := as4D(x.Shape, p.spatial)
	if err != nil {
		return nil, err
	}
	ws, err := as4D(w.Shape, p.spatial)
	if err != nil {
		return nil, err
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	m, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	if c != cg*p.group || m%p.group != 0 {
		return nil, fmt.Errorf("input has %d channels, weights expect %d x %d groups", c, cg, p.group)
	}
	if bias != nil && len(bias) != m {
		return nil, fmt.Errorf("bias has %d values, want %d", len(bias), m)
	}
	oh, pt, _ := convOut(h, kh, p.sh, p.dh, p.padT, p.padB, p.autoPad)
	ow, pl, _ := convOut(wd, kw, p.sw, p.dw, p.padL, p.padR, p.autoPad)
	per := cg * kh * kw
	g := convGeom{c: c, h: h, w: wd, kh: kh, kw: kw, sh: p.sh, sw: p.sw, dh: p.dh, dw: p.dw, pt: pt, pl: pl, oh: oh, ow: ow}
	shape := []int{n, m, oh, ow}
	if p.spatial == 1 {
		shape = []int{n, m, ow}
	}
	if useIgemm && p.group == 1 {
		var b8 *convB8Weights
		if cw != nil {
			b8 = cw.b8
		}
		return intConvB8(ctx, g, n, m, x, w, xzp, wzp, b8, bias, shape, q)
	}
	xc := ctx.Scratch(x.Len())
	defer ctx.Release(xc)
	if err := centerInto(xc, x, xzp, func(int) int { return 0 }); err != nil {
		return nil, fmt.Errorf("x: %v", err)
	}
	var wc []float32
	var maxW float32
	if cw != nil && cw.w == w && cw.wc != nil {
		wc, maxW = cw.wc, cw.max
	} else {
		wc = ctx.Scratch(w.Len())
		defer ctx.Release(wc)
		if err := centerInto(wc, w, wzp, func(i int) int { return i / per }); err != nil {
			return nil, fmt.Errorf("w: %v", err)
		}
		maxW = maxAbs(wc)
	}
	maxX := maxAbs(xc)
	chunk := intChunkFor(maxX, maxW)
	mg, plane := m/p.group, oh*ow
	// Depthwise: the float depthwise kernels, direct (no im2col a
	// channel), exact while the window's taps fit a chunk; their sums
	// are integers, converted as they are, or requantized from float32
	// where each sum plus the bias is exact in it.
	if cg == 1 && mg == 1 && p.group > 1 && kh*kw <= chunk {
		fo := ctx.Scratch(n * m * plane)
		defer ctx.Release(fo)
		var cache *atomic.Pointer[depthwiseParams]
		if cw != nil && cw.w == w {
			cache = &cw.dw
		}
		depthwise(ctx, g, n, c, xc, wc, nil, fo, nil, nil, nil, cache, nil)
		if q != nil && float64(kh*kw)*float64(maxX)*float64(maxW)+maxAbsInt32(bias) <= 1<<24 {
			if out := requantFloatPlanes(ctx, q, fo, bias, m, plane, shape); out != nil {
				return out, nil
			}
		}
		out := ctx.Empty(graph.Int32, shape)
		acc := graph.Elems[int32](out)
		vec.F32ToI32(acc, fo)
		addChannelBias(acc, bias, m, plane)
		return out, nil
	}
	out := ctx.Empty(graph.Int32, shape)
	acc := graph.Elems[int32](out)
	// A 1x1 convolution of stride 1 without padding reads x as it is.
	direct := kh == 1 && kw == 1 && p.sh == 1 && p.sw == 1 && pt == 0 && pl == 0 && oh == h && ow == wd
	var col []float32
	if !direct {
		col = ctx.Scratch(per * plane)
		defer ctx.Release(col)
	}
	for b := range n {
		for gi := range p.group {
			xg := xc[(b*c+gi*cg)*h*wd:]
			if !direct {
				im2col(ctx, g, cg, xg, col, 0, oh)
				xg = col
			}
			o := (b*m + gi*mg) * plane
			intGemm(ctx, mg, plane, per, chunk, wc[gi*mg*per:], xg, nil, acc[o:o+mg*plane])
		}
	}
	addChannelBias(acc, bias, m, plane)
	return out, nil
}

// requantFloatPlanes requantizes the float32 sums fo (images of m planes)
// by q into a new tensor of q's type, each plane of channel oc plus
// bias[oc] (nil: 0) and under its multiplier; nil when q's type is not
// 8-bit.
func requantFloatPlanes(ctx *Context, q *requantSpec, fo []float32, bias []int32, m, plane int, shape []int) *graph.Tensor {
	if q.dt != graph.Uint8 && q.dt != graph.Int8 {
		return nil
	}
	out := ctx.Empty(q.dt, shape)
	z, lo, hi := float32(q.z), float32(q.lo), float32(q.hi)
	for o := 0; o < len(fo); o += plane {
		ch := (o / plane) % m
		var add float32
		if bias != nil {
			add = float32(bias[ch])
		}
		mu := q.mult[ch%len(q.mult)]
		switch d := out.Data().(type) {
		case []uint8:
			vec.RequantFloat8(d[o:o+plane], fo[o:o+plane], add, mu, z, lo, hi)
		case []int8:
			vec.RequantFloat8(d[o:o+plane], fo[o:o+plane], add, mu, z, lo, hi)
		}
	}
	return out
}

// maxAbsInt32 is the largest magnitude in v (0 for none), in float64.
func maxAbsInt32(v []int32) float64 {
	var m float64
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// addChannelBias adds bias[oc] (nil: nothing) to each plane of channel oc
// of acc, images of m planes.
func addChannelBias(acc, bias []int32, m, plane int) {
	if bias == nil || plane == 0 {
		return
	}
	for o := 0; o < len(acc); o += plane {
		bv := bias[(o/plane)%m]
		r := acc[o : o+plane]
		for i := range r {
			r[i] += bv
		}
	}
}

func newConvInteger(ni *NodeInfo) (Kernel, error) {
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
	cw := newIntConvWeights(ni, 1, 3, p.group)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		var xzp, wzp *graph.Tensor
		if len(in) > 2 {
			xzp = in[2]
		}
		if len(in) > 3 {
			wzp = in[3]
		}
		pp, err := paramsFor(p, ni, in[0])
		if err != nil {
			return nil, err
		}
		acc, err := intConv(ctx, pp, in[0], in[1], xzp, wzp, cw, nil, nil)
		if err != nil {
			return nil, err
		}
		return one(acc), nil
	}), nil
}

// requantSpec is how an integer op's int32 accumulators become its
// output codes, as ONNX Runtime's integer kernels do it, in float32: round
// half to even of float32(acc) times the float32 multiplier x_scale *
// w_scale / y_scale, plus the output zero point, saturated. (float64
// arithmetic would round a few boundary values the other way than every
// runtime.) Element i takes multiplier mult[(i/inner) % len(mult)], with
// inner given where it is applied: one for all, or one per run of inner
// elements (an output channel's plane, a column).
type requantSpec struct {
	mult      []float32
	dt        graph.DataType
	z, lo, hi float64
}

// newRequantSpec is the requantization to yzp's type and zero point
// (uint8 and 0 without one).
func newRequantSpec(mult []float32, yzp *graph.Tensor) (*requantSpec, error) {
	q := &requantSpec{mult: mult, dt: graph.Uint8}
	if yzp != nil {
		q.dt = yzp.DType
		q.z = float64(readInt64s(yzp)[0])
	}
	var ok bool
	if q.lo, q.hi, ok = QuantRange(q.dt); !ok {
		return nil, fmt.Errorf("output type %s is not supported", q.dt.Short())
	}
	return q, nil
}

// apply requantizes acc into a new tensor of the spec's type and shape.
func (q *requantSpec) apply(ctx *Context, acc []int32, inner int, shape []int) *graph.Tensor {
	out := ctx.Empty(q.dt, shape)
	switch d := out.Data().(type) {
	case []uint8:
		requant8(d, acc, q.mult, inner, q.z, q.lo, q.hi)
	case []int8:
		requant8(d, acc, q.mult, inner, q.z, q.lo, q.hi)
	default:
		wide := make([]int64, len(acc))
		requantRuns(wide, acc, q.mult, inner, q.z, q.lo, q.hi)
		StoreInt64s(out, wide)
	}
	return out
}

// requantize is requantSpec's apply for a multiplier table and output zero
// point.
func requantize(ctx *Context, acc []int32, mult []float32, inner int, yzp *graph.Tensor, shape []int) (*graph.Tensor, error) {
	q, err := newRequantSpec(mult, yzp)
	if err != nil {
		return nil, err
	}
	return q.apply(ctx, acc, inner, shape), nil
}

// requant8 is requantize into 8-bit codes by vec.Requant8, the same
// arithmetic in one pass: a run of inner elements (one multiplier), a row
// of len(mult) elements (inner 1: a multiplier each), or everything (one
// multiplier) at a time.
func requant8[T uint8 | int8](dst []T, acc []int32, mult []float32, inner int, z, lo, hi float64) {
	zf, lf, hf := float32(z), float32(lo), float32(hi)
	switch {
	case len(mult) == 1:
		vec.Requant8(dst, acc, mult, zf, lf, hf)
	case inner > 1:
		for r := 0; r < len(acc); r += inner {
			e, j := min(len(acc), r+inner), (r/inner)%len(mult)
			vec.Requant8(dst[r:e], acc[r:e], mult[j:j+1], zf, lf, hf)
		}
	default:
		for r := 0; r < len(acc); r += len(mult) {
			e := min(len(acc), r+len(mult))
			vec.Requant8(dst[r:e], acc[r:e], mult[:e-r], zf, lf, hf)
		}
	}
}

// requantRuns is requantize's loop into dst of one element type: runs of
// inner elements share a multiplier.
func requantRuns[T uint8 | int8 | int64](dst []T, acc []int32, mult []float32, inner int, z, lo, hi float64) {
	inner = max(1, inner)
	for r := 0; r < len(acc); r += inner {
		mu := mult[(r/inner)%len(mult)]
		e := min(len(acc), r+inner)
		d := dst[r:e]
		for i, v := range acc[r:e] {
			d[i] = T(max(lo, min(hi, math.RoundToEven(float64(float32(v)*mu))+z)))
		}
	}
}

// requantScales returns the multipliers x_scale * w_scale / y_scale of an
// integer product, in float32, for requantize with inner 1: x_scale and
// y_scale are one value or one per output row (rows of them), w_scale one or
// one per column (cols). The table is one value, a row of cols, or rows x
// cols, as they vary.
func requantScales(xs, ws, ys *graph.Tensor, rows, cols int) ([]float32, error) {
	xsv, err := xs.AsFloat32()
	if err != nil {
		return nil, err
	}
	wsv, err := ws.AsFloat32()
	if err != nil {
		return nil, err
	}
	ysv, err := ys.AsFloat32()
	if err != nil {
		return nil, err
	}
	for _, c := range []struct {
		v    []float32
		what string
		n    int
	}{{xsv, "input scale", rows}, {ysv, "output scale", rows}, {wsv, "weight scale", cols}} {
		if len(c.v) != 1 && len(c.v) != c.n {
			return nil, fmt.Errorf("%d values of the %s, want 1 or %d", len(c.v), c.what, c.n)
		}
	}
	r, k := 1, len(wsv)
	if len(xsv) > 1 || len(ysv) > 1 {
		r, k = rows, cols
	}
	mult := make([]float32, r*k)
	for i := range r {
		for j := range k {
			mult[i*k+j] = xsv[min(i, len(xsv)-1)] * wsv[min(j, len(wsv)-1)] / ysv[min(i, len(ysv)-1)]
		}
	}
	return mult, nil
}

func newQLinearConv(ni *NodeInfo) (Kernel, error) {
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
	cw := newIntConvWeights(ni, 3, 5, p.group)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 8); err != nil {
			return nil, err
		}
		x, xs, xzp, w, ws, wzp, ys, yzp := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
		pp, err := paramsFor(p, ni, x)
		if err != nil {
			return nil, err
		}
		var bias []int32
		if len(in) > 8 && in[8] != nil {
			if in[8].DType != graph.Int32 {
				return nil, fmt.Errorf("bias is %s, want int32", in[8].DType.Short())
			}
			bias = graph.Elems[int32](in[8])
		}
		if w.Rank() < 3 {
			return nil, fmt.Errorf("weights have rank %d, want 3 or more", w.Rank())
		}
		// Per output channel: a channel's plane is a run of requantize.
		mult, err := requantScales(xs, ws, ys, 1, w.Shape[0])
		if err != nil {
			return nil, err
		}
		q, err := newRequantSpec(mult, yzp)
		if err != nil {
			return nil, err
		}
		out, err := intConv(ctx, pp, x, w, xzp, wzp, cw, bias, q)
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func newQLinearMatMul(ni *NodeInfo) (Kernel, error) {
	im, err := newIntMatMul(ni, "QLinearMatMul", 3, 5)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 8); err != nil {
			return nil, err
		}
		a, as, azp, b, bs, bzp, ys, yzp := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
		if b.Rank() == 0 {
			return nil, fmt.Errorf("operands must have rank >= 1")
		}
		n := b.Shape[b.Rank()-1]
		acc, err := im.run(ctx, a, azp, b, bzp)
		if err != nil {
			return nil, err
		}
		defer recycleTemp(ctx, acc)
		rows := 1
		if a.Rank() > 1 {
			rows = a.Shape[a.Rank()-2]
		}
		mult, err := requantScales(as, bs, ys, rows, n)
		if err != nil {
			return nil, err
		}
		out, err := requantize(ctx, graph.Elems[int32](acc), mult, 1, yzp, acc.Shape)
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func init() {
	Register("", "QuantizeLinear", 10, newQuantizeLinear)
	Register("", "DequantizeLinear", 10, newDequantizeLinear)
	Register("", "DynamicQuantizeLinear", 11, newDynamicQuantizeLinear)
	Register("", "MatMulInteger", 10, newMatMulInteger)
	Register("", "ConvInteger", 10, newConvInteger)
	Register("", "QLinearConv", 10, newQLinearConv)
	Register("", "QLinearMatMul", 10, newQLinearMatMul)
}
