package kernels

import (
	"fmt"
	"math"

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
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "DynamicQuantizeLinear input"); err != nil {
			return nil, err
		}
		xs := x.Float32s()
		lo, hi := float32(0), float32(0)
		for _, v := range xs {
			lo, hi = min(lo, v), max(hi, v)
		}
		scale := (hi - lo) / 255
		zp := int32(0)
		if scale != 0 {
			zp = int32(max(0, min(255, math.RoundToEven(float64(0-lo/scale)))))
		}
		out := graph.NewTensor(graph.Uint8, x.Shape)
		d := out.Data().([]uint8)
		if scale != 0 {
			for i, v := range xs {
				d[i] = uint8(QuantizeValue(v, scale, zp, 0, 255))
			}
		}
		zpT := graph.NewTensor(graph.Uint8, nil)
		zpT.Data().([]uint8)[0] = uint8(zp)
		return []*graph.Tensor{out, graph.Float32Tensor(nil, []float32{scale}), zpT}, nil
	}), nil
}

// centered returns t's values minus its zero point(s) as int32. axisLen > 0 allows a
// zero point per index of axis (rows of A or columns of B, or output channels).
func centered(t, zp *graph.Tensor, perIndex func(i int) int) ([]int32, error) {
	if t.DType != graph.Int8 && t.DType != graph.Uint8 {
		return nil, fmt.Errorf("%s is not int8 or uint8", t.DType.Short())
	}
	v := readInt64s(t)
	out := make([]int32, len(v))
	var z []int64
	if zp != nil {
		if zp.DType != t.DType {
			return nil, fmt.Errorf("zero point type %s differs from %s", zp.DType.Short(), t.DType.Short())
		}
		z = readInt64s(zp)
	}
	for i, x := range v {
		zz := int64(0)
		switch {
		case len(z) == 1:
			zz = z[0]
		case len(z) > 1:
			k := perIndex(i)
			if k >= len(z) {
				return nil, fmt.Errorf("zero point has %d values, need more", len(z))
			}
			zz = z[k]
		}
		out[i] = int32(x - zz)
	}
	return out, nil
}

// matmulInt32 multiplies centered int32 operands with numpy batch broadcasting.
func matmulInt32(a, b []int32, as, bs []int) ([]int32, []int, error) {
	batch, m, k, n, outShape, err := matmulShapes(as, bs)
	if err != nil {
		return nil, nil, err
	}
	a2, b2 := as, bs
	if len(a2) == 1 {
		a2 = []int{1, a2[0]}
	}
	if len(b2) == 1 {
		b2 = []int{b2[0], 1}
	}
	aStr := bcastStrides(a2[:len(a2)-2], batch)
	bStr := bcastStrides(b2[:len(b2)-2], batch)
	out := make([]int32, graph.Numel(batch)*m*n)
	idx := make([]int, len(batch))
	for bi := 0; bi < graph.Numel(batch); bi++ {
		ao, bo := 0, 0
		for d := range batch {
			ao += idx[d] * aStr[d]
			bo += idx[d] * bStr[d]
		}
		A, B, C := a[ao*m*k:], b[bo*k*n:], out[bi*m*n:]
		for i := 0; i < m; i++ {
			for p := 0; p < k; p++ {
				av := A[i*k+p]
				if av == 0 {
					continue
				}
				row := B[p*n : p*n+n]
				crow := C[i*n : i*n+n]
				for j, bv := range row {
					crow[j] += av * bv
				}
			}
		}
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < batch[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, outShape, nil
}

// scaleAccumulators turns the int32 accumulators of an [..., n] integer
// product into float: times the activation's scale and the weight's scale
// (one, or one per column), plus the bias when given. The epilogue of ORT's
// integer-to-float contrib ops.
func scaleAccumulators(acc []int32, shape []int, aScale float32, wScales, bias []float32, n int) *graph.Tensor {
	mul := make([]float32, n)
	for j := range mul {
		mul[j] = aScale * wScales[min(j, len(wScales)-1)]
	}
	out := graph.NewTensor(graph.Float, shape)
	y := out.Float32s()
	for i, v := range acc {
		y[i] = float32(v) * mul[i%n]
		if bias != nil {
			y[i] += bias[i%n]
		}
	}
	return out
}

// matmulCentered multiplies int8/uint8 operands after subtracting their zero
// points: A's per row (or scalar), B's per column (or scalar).
func matmulCentered(a, azp, b, bzp *graph.Tensor) ([]int32, []int, error) {
	if a.Rank() == 0 || b.Rank() == 0 {
		return nil, nil, fmt.Errorf("operands must have rank >= 1")
	}
	k := a.Shape[a.Rank()-1]
	n := b.Shape[b.Rank()-1]
	ac, err := centered(a, azp, func(i int) int { return (i / k) % a.Shape[max(0, a.Rank()-2)] })
	if err != nil {
		return nil, nil, fmt.Errorf("A: %v", err)
	}
	bc, err := centered(b, bzp, func(i int) int { return i % n })
	if err != nil {
		return nil, nil, fmt.Errorf("B: %v", err)
	}
	return matmulInt32(ac, bc, a.Shape, b.Shape)
}

func newMatMulInteger(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
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
		out, shape, err := matmulCentered(a, azp, b, bzp)
		if err != nil {
			return nil, err
		}
		t, _ := graph.TensorOf(graph.Int32, shape, out)
		return one(t), nil
	}), nil
}

// convInt32 is an exact int32 convolution of centered inputs. Each output
// plane accumulates weight x shifted input row, so the inner loop runs over
// contiguous output pixels; planes (batch x output channel) run in parallel.
func convInt32(x, w []int32, n, c, m, cg int, g convGeom, groups, threads int) []int32 {
	mg := m / groups
	plane := g.oh * g.ow
	out := make([]int32, n*m*plane)
	parallelFor(threads, n*m, func(lo, hi int) {
		for job := lo; job < hi; job++ {
			b, oc := job/m, job%m
			gi := oc / mg
			o := out[job*plane : (job+1)*plane]
			for ci := 0; ci < cg; ci++ {
				xc := x[(b*c+gi*cg+ci)*g.h*g.w : (b*c+gi*cg+ci+1)*g.h*g.w]
				wc := w[(oc*cg+ci)*g.kh*g.kw : (oc*cg+ci+1)*g.kh*g.kw]
				for ki := 0; ki < g.kh; ki++ {
					for kj := 0; kj < g.kw; kj++ {
						wv := wc[ki*g.kw+kj]
						if wv == 0 {
							continue
						}
						// Output columns whose input column ox*sw + off lies inside the row.
						off := kj*g.dw - g.pl
						ox0 := 0
						if off < 0 {
							ox0 = (-off + g.sw - 1) / g.sw
						}
						ox1 := min(g.ow, (g.w-1-off)/g.sw+1)
						if g.w-1-off < 0 || ox1 <= ox0 {
							continue
						}
						for oy := 0; oy < g.oh; oy++ {
							iy := oy*g.sh + ki*g.dh - g.pt
							if iy < 0 || iy >= g.h {
								continue
							}
							row := xc[iy*g.w : (iy+1)*g.w]
							orow := o[oy*g.ow : (oy+1)*g.ow]
							ix := ox0*g.sw + off
							if g.sw == 1 {
								src := row[ix : ix+ox1-ox0]
								dst := orow[ox0:ox1]
								for i, v := range src {
									dst[i] += wv * v
								}
								continue
							}
							for ox := ox0; ox < ox1; ox++ {
								orow[ox] += wv * row[ix]
								ix += g.sw
							}
						}
					}
				}
			}
		}
	})
	return out
}

// intConv resolves geometry and runs convInt32; wPer maps a weight element index
// to its output channel (for per-channel weight zero points).
func intConv(p *convParams, x, w *graph.Tensor, xzp, wzp *graph.Tensor, threads int) ([]int32, []int, error) {
	xs, err := as4D(x.Shape, p.spatial)
	if err != nil {
		return nil, nil, err
	}
	ws, err := as4D(w.Shape, p.spatial)
	if err != nil {
		return nil, nil, err
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	m, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	if c != cg*p.group || m%p.group != 0 {
		return nil, nil, fmt.Errorf("input has %d channels, weights expect %d x %d groups", c, cg, p.group)
	}
	oh, pt, _ := convOut(h, kh, p.sh, p.dh, p.padT, p.padB, p.autoPad)
	ow, pl, _ := convOut(wd, kw, p.sw, p.dw, p.padL, p.padR, p.autoPad)
	per := cg * kh * kw
	xc, err := centered(x, xzp, func(int) int { return 0 })
	if err != nil {
		return nil, nil, fmt.Errorf("x: %v", err)
	}
	wc, err := centered(w, wzp, func(i int) int { return i / per })
	if err != nil {
		return nil, nil, fmt.Errorf("w: %v", err)
	}
	geo := convGeom{c: c, h: h, w: wd, kh: kh, kw: kw, sh: p.sh, sw: p.sw, dh: p.dh, dw: p.dw, pt: pt, pl: pl, oh: oh, ow: ow}
	shape := []int{n, m, oh, ow}
	if p.spatial == 1 {
		shape = []int{n, m, ow}
	}
	return convInt32(xc, wc, n, c, m, cg, geo, p.group, threads), shape, nil
}

func newConvInteger(ni *NodeInfo) (Kernel, error) {
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
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
		acc, shape, err := intConv(pp, in[0], in[1], xzp, wzp, ctx.Threads)
		if err != nil {
			return nil, err
		}
		t, _ := graph.TensorOf(graph.Int32, shape, acc)
		return one(t), nil
	}), nil
}

// requantize maps int32 accumulators to the output type as ONNX Runtime's
// integer kernels do, in float32: round half to even of float32(acc) times the
// float32 multiplier x_scale * w_scale / y_scale, plus the output zero point,
// saturated. (float64 arithmetic would round a few boundary values the other
// way than every runtime.)
func requantize(acc []int32, multiplier func(i int) float32, yzp *graph.Tensor, shape []int) (*graph.Tensor, error) {
	dt := graph.Uint8
	z := int64(0)
	if yzp != nil {
		dt = yzp.DType
		z = readInt64s(yzp)[0]
	}
	lo, hi, ok := QuantRange(dt)
	if !ok {
		return nil, fmt.Errorf("output type %s is not supported", dt.Short())
	}
	q := make([]int64, len(acc))
	for i, v := range acc {
		f := float32(v) * multiplier(i)
		r := math.RoundToEven(float64(f)) + float64(z)
		q[i] = int64(max(lo, min(hi, r)))
	}
	out := graph.NewTensor(dt, shape)
	StoreInt64s(out, q)
	return out, nil
}

func newQLinearConv(ni *NodeInfo) (Kernel, error) {
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 8); err != nil {
			return nil, err
		}
		x, xs, xzp, w, ws, wzp, ys, yzp := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
		pp, err := paramsFor(p, ni, x)
		if err != nil {
			return nil, err
		}
		acc, shape, err := intConv(pp, x, w, xzp, wzp, ctx.Threads)
		if err != nil {
			return nil, err
		}
		m := shape[1]
		plane := len(acc) / max(1, shape[0]*m)
		if len(in) > 8 && in[8] != nil {
			bias := graph.Elems[int32](in[8])
			if len(bias) != m {
				return nil, fmt.Errorf("bias has %d values, want %d", len(bias), m)
			}
			for i := range acc {
				acc[i] += bias[(i/plane)%m]
			}
		}
		xsv, _ := xs.AsFloat32()
		wsv, _ := ws.AsFloat32()
		ysv, _ := ys.AsFloat32()
		mult := func(i int) float32 {
			wv := wsv[0]
			if len(wsv) > 1 {
				wv = wsv[(i/plane)%m]
			}
			return xsv[0] * wv / ysv[0]
		}
		out, err := requantize(acc, mult, yzp, shape)
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func newQLinearMatMul(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 8); err != nil {
			return nil, err
		}
		a, as, azp, b, bs, bzp, ys, yzp := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
		n := b.Shape[b.Rank()-1]
		acc, shape, err := matmulCentered(a, azp, b, bzp)
		if err != nil {
			return nil, err
		}
		asv, _ := as.AsFloat32()
		bsv, _ := bs.AsFloat32()
		ysv, _ := ys.AsFloat32()
		mult := func(i int) float32 {
			bv := bsv[0]
			if len(bsv) > 1 {
				bv = bsv[i%n]
			}
			return asv[0] * bv / ysv[0]
		}
		out, err := requantize(acc, mult, yzp, shape)
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
