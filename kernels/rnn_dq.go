package kernels

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/igemm"
	"github.com/onnxq/onnxq/kernels/vec"
)

// DynamicQuantizeLSTM (com.microsoft), which ONNX Runtime's quantize_dynamic
// writes for every LSTM: an LSTM whose W [dirs, input, 4*hidden] and R
// [dirs, hidden, 4*hidden] (stored transposed against LSTM's) are 8-bit
// codes with scales (one, or one a column) and one zero point per
// direction or column (ONNX Runtime reads one a direction), inputs 8 to
// 11. Its two products run as ONNX Runtime's
// quantized GEMM does (onnxruntime's rnn_helpers ComputeGemm): the float
// operand, all of X for the input projection and each step's h for the
// recurrence, is quantized to uint8 with its own range (widened to take
// in 0; scale (max - min) / 255, or 1 when max = min; zero point
// round(-min / scale)), the integer product is exact, and each sum becomes
// float32 times a_scale * w_scale of its column. The gates are LSTM's.

// dqWeights are one direction's W or R: the codes less their zero point
// as float32 ([k][n]), their largest magnitude, and the scales (one a
// column).
type dqWeights struct {
	codes  []float32
	max    float32
	scales []float32
	// b8 and zb: the codes packed for igemm and their zero points (as
	// packB8 gives them), where the CPU runs it; t[j] is k zb[j] less the
	// sum of column j (zpExpansion's), for taking the zero points off.
	b8     *igemm.PackedB
	zb, t  []int32
	zbZero bool // every zb is 0
}

// lstmQuant is a DynamicQuantizeLSTM's weights, per direction.
type lstmQuant struct {
	w, r []dqWeights
}

// lstmQuantCache is the weights read from the tensors in (W, R and inputs
// 8 to 11), kept while the same tensors (the model's constants) come back.
type lstmQuantCache struct {
	in      [6]*graph.Tensor
	q       *lstmQuant
	hs, isz int
}

// lstmQuant is readLSTMQuant, from the cache when the weights are the
// model's constants and its tensors are in's.
func (k *recurrentKernel) lstmQuant(in []*graph.Tensor, dirs int) (*lstmQuant, int, int, error) {
	if !k.qconst {
		return readLSTMQuant(in, dirs)
	}
	var key [6]*graph.Tensor
	for i, j := range []int{1, 2, 8, 9, 10, 11} {
		if j < len(in) {
			key[i] = in[j]
		}
	}
	if c := k.qcache.Load(); c != nil && c.in == key {
		return c.q, c.hs, c.isz, nil
	}
	q, hs, isz, err := readLSTMQuant(in, dirs)
	if err == nil {
		k.qcache.Store(&lstmQuantCache{in: key, q: q, hs: hs, isz: isz})
	}
	return q, hs, isz, err
}

// readLSTMQuant reads W, R and their scales and zero points (inputs 1, 2
// and 8 to 11) for dirs directions of hidden units hs.
func readLSTMQuant(in []*graph.Tensor, dirs int) (*lstmQuant, int, int, error) {
	opt := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	w, r := in[1], in[2]
	if w.Rank() != 3 || r.Rank() != 3 || w.Shape[0] != dirs || r.Shape[0] != dirs || r.Shape[2] != 4*r.Shape[1] || w.Shape[2] != r.Shape[2] {
		return nil, 0, 0, fmt.Errorf("W %v and R %v must be [%d, input, 4*hidden] and [%d, hidden, 4*hidden]", w.Shape, r.Shape, dirs, dirs)
	}
	hs, isz := r.Shape[1], w.Shape[1]
	for i, t := range []*graph.Tensor{w, r, opt(9), opt(11)} {
		if t != nil && t.DType != graph.Int8 && t.DType != graph.Uint8 {
			return nil, 0, 0, fmt.Errorf("%s is %s, not int8 or uint8", [...]string{"W", "R", "W_zero_point", "R_zero_point"}[i], t.DType.Short())
		}
	}
	if z := opt(9); z != nil && z.DType != w.DType {
		return nil, 0, 0, fmt.Errorf("W_zero_point is %s, W %s", z.DType.Short(), w.DType.Short())
	}
	if z := opt(11); z != nil && z.DType != r.DType {
		return nil, 0, 0, fmt.Errorf("R_zero_point is %s, R %s", z.DType.Short(), r.DType.Short())
	}
	q := &lstmQuant{}
	for i, t := range []*graph.Tensor{w, r} {
		name := [...]string{"W", "R"}[i]
		st, zt := opt(8+2*i), opt(9+2*i)
		if st == nil {
			return nil, 0, 0, fmt.Errorf("%s_scale is required", name)
		}
		scales, err := float32sOf(st, name+"_scale")
		if err != nil {
			return nil, 0, 0, err
		}
		cols := 4 * hs
		if len(scales) != dirs && len(scales) != dirs*cols {
			return nil, 0, 0, fmt.Errorf("%s_scale has %d values, want %d or %d", name, len(scales), dirs, dirs*cols)
		}
		per := len(scales) / dirs
		k := t.Shape[1]
		for d := range dirs {
			// The scales one a column, whichever way they came.
			dw := dqWeights{scales: make([]float32, cols)}
			for j := range dw.scales {
				dw.scales[j] = scales[d*per+min(j, per-1)]
			}
			codes := byteRange(t, d*k*cols, k*cols)
			codes.Shape = []int{k, cols}
			// Zero points take the scales' shape: one a direction, or one
			// a column.
			var zp *graph.Tensor
			zper := 1
			if zt != nil {
				if zt.Len() != dirs && zt.Len() != dirs*cols {
					return nil, 0, 0, fmt.Errorf("%s_zero_point has %d values, want %d or %d", name, zt.Len(), dirs, dirs*cols)
				}
				zper = zt.Len() / dirs
				zp = byteRange(zt, d*zper, zper)
			}
			if useIgemm {
				if dw.b8, dw.zb, err = packB8(codes, zp); err != nil {
					return nil, 0, 0, fmt.Errorf("%s: %v", name, err)
				}
				// The zero points one a column too.
				zb := make([]int32, cols)
				dw.t = make([]int32, cols)
				for j := range dw.t {
					zb[j] = dw.zb[min(j, len(dw.zb)-1)]
					dw.t[j] = int32(k)*zb[j] - dw.b8.ColSums[j]
				}
				dw.zb = zb
				dw.zbZero = !slices.ContainsFunc(zb, func(v int32) bool { return v != 0 })
			} else {
				// The float path's operand: the codes less their zero
				// points.
				dw.codes = make([]float32, k*cols)
				if err := centerInto(dw.codes, codes, zp, func(i int) int { return i % cols % zper }); err != nil {
					return nil, 0, 0, fmt.Errorf("%s: %v", name, err)
				}
				dw.max = maxAbs(dw.codes)
			}
			if i == 0 {
				q.w = append(q.w, dw)
			} else {
				q.r = append(q.r, dw)
			}
		}
	}
	return q, hs, isz, nil
}

// byteRange is n values of the 8-bit t from offset off, as a 1-D tensor
// (a copy).
func byteRange(t *graph.Tensor, off, n int) *graph.Tensor {
	out := graph.NewTensor(t.DType, []int{n})
	copy(rawBytes(out), rawBytes(t)[off:off+n])
	return out
}

// quantizeRange quantizes a into uint8 codes with its own range, as ONNX
// Runtime's quantized GEMM does its float operand (GetQuantizationParameter:
// the range widened to take in 0; scale (max - min) / 255, or 1 when max
// = min; zero point round(-min / scale)), and returns the scale and the
// zero point.
func quantizeRange(a []float32, codes []uint8) (float32, float32) {
	lo, hi := vec.MinMax(a)
	lo, hi = min(lo, 0), max(hi, 0)
	scale := float32(1)
	if hi != lo {
		scale = (hi - lo) / 255
	}
	zp := float32(math.RoundToEven(float64(max(0, min(255, 0-lo/scale)))))
	vec.Quantize8(codes, a, scale, zp, 0, 255)
	return scale, zp
}

// dynamicQuantize quantizes a as ONNX Runtime's quantized GEMM does its
// float operand, into codes less the zero point (as float32) in dst, and
// returns the scale and the codes' largest magnitude. codes is scratch as
// long as a.
func dynamicQuantize(dst, a []float32, codes []uint8) (float32, float32) {
	scale, zp := quantizeRange(a, codes)
	// The codes' magnitudes less zp are at most max(zp, 255 - zp).
	vec.Dequantize(dst, codes, int32(zp), 1)
	return scale, max(zp, 255-zp)
}

// product sets (accumulate false) or adds to c (rows of ldc) the quantized
// product of a (m x k) and the weights (k x n): each int32 sum times
// a_scale * the column's scale, in float32.
func (w *dqWeights) product(ctx *Context, a []float32, m, k, n int, c []float32, ldc int, accumulate bool) {
	ct := ctx.Empty(graph.Uint8, []int{m * k})
	defer recycleTemp(ctx, ct)
	codes := graph.Elems[uint8](ct)
	accF := ctx.Scratch(m * n) // int32 sums in float32's room
	defer ctx.Release(accF)
	acc := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(accF))), len(accF))
	var aScale float32
	if w.b8 != nil {
		// igemm on the codes themselves; the zero points come off after
		// (zpExpansion's terms: za t[j] - zb[j] sum a).
		var za float32
		aScale, za = quantizeRange(a[:m*k], codes)
		// za t[j], the same for every row, goes in as igemm's bias (int32
		// sums wrap alike in any order: the same values); zb[j] sum a
		// only where a weight zero point is not 0 (it is 0 for int8
		// symmetric weights and for uint8 ones centred on 128, what
		// quantize_dynamic writes).
		biasF := ctx.Scratch(n)
		defer ctx.Release(biasF)
		bias := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(biasF))), n)
		z := int32(za)
		for j, t := range w.t[:n] {
			bias[j] = z * t
		}
		igemm.Mul(m, codes, k, w.b8, acc, n, bias, ctx.Threads)
		for i := 0; i < m && !w.zbZero; i++ {
			var sa int32
			for _, v := range codes[i*k : (i+1)*k] {
				sa += int32(v)
			}
			row, zb := acc[i*n:(i+1)*n], w.zb[:n]
			for j := range row {
				row[j] -= zb[j] * sa
			}
		}
	} else {
		ac := ctx.Scratch(m * k)
		defer ctx.Release(ac)
		var aMax float32
		aScale, aMax = dynamicQuantize(ac, a[:m*k], codes)
		intGemm(ctx, m, n, k, intChunkFor(aMax, w.max), ac, w.codes, nil, acc)
	}
	mult := ctx.Scratch(2 * n)
	defer ctx.Release(mult)
	mult, f := mult[:n], mult[n:]
	vec.MulScalar(mult, w.scales[:n], aScale)
	// float32(sum) * mult[j] (+ C), rounded as the scalar loop was: the
	// conversion exact to nearest, then the product, then the sum.
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		vec.I32ToF32(f, acc[i*n:(i+1)*n])
		if accumulate {
			vec.Mul(f, f, mult)
			vec.Add(row, f, row)
		} else {
			vec.Mul(row, f, mult)
		}
	}
}
