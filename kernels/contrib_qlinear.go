package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- com.microsoft quantized ops (ONNX Runtime's QOperator format) ----
//
// ONNX Runtime's quantizer writes these contrib ops around QLinearConv and
// QLinearMatMul. Each one dequantizes its inputs ((q - zero_point) * scale),
// computes the float op and quantizes the result (round half to even,
// saturated to the type). The float32 arithmetic follows ORT's CPU kernels
// step for step, so the codes agree with ORT's rather than with a float64
// reference that rounds some ties the other way:
//
//   - QLinearAdd works in ratios of scales with fused multiply-adds (MLAS's
//     AVX2 kernel), QLinearMul in one ratio A_scale*B_scale/C_scale on the
//     integer product (MLAS's SSE2 kernel);
//   - QLinearSigmoid, QLinearLeakyRelu and QLinearConcat map each of the 256
//     codes once, through a table (ORT's sigmoid is MLAS's rational
//     approximation, onnxq's exp in float64: they could part on a code
//     within ~1e-7 of a rounding tie, and none of the tables compared does);
//   - QLinearSoftmax sums ORT's table of shifted exponentials and scales by
//     floor(1/y_scale), not by 1/y_scale;
//   - QLinearGlobalAveragePool (and QLinearAveragePool whose window is the
//     whole plane) requantizes the integer sum; QLinearAveragePool sums
//     dequantized floats in window order.
//
// Scales and zero points are per tensor (one value) except QGemm's B (per
// column) and QuantizeLinear/DequantizeLinear (per axis), which are the
// standard kernels of quant.go.

func init() {
	ms := "com.microsoft"
	Register(ms, "QuantizeLinear", 1, newQuantizeLinear)
	Register(ms, "DequantizeLinear", 1, newDequantizeLinear)
	Register(ms, "QLinearAdd", 1, newQLinearBinary("QLinearAdd"))
	Register(ms, "QLinearMul", 1, newQLinearBinary("QLinearMul"))
	Register(ms, "QLinearConcat", 1, newQLinearConcat)
	Register(ms, "QLinearSigmoid", 1, newQLinearLookup("QLinearSigmoid", func(*attrs) func(float32) float32 {
		return func(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
	}))
	Register(ms, "QLinearLeakyRelu", 1, newQLinearLookup("QLinearLeakyRelu", func(a *attrs) func(float32) float32 {
		alpha := a.Float("alpha", 0.01)
		return func(x float32) float32 {
			if x >= 0 {
				return x
			}
			return alpha * x
		}
	}))
	Register(ms, "QLinearSoftmax", 1, newQLinearSoftmax)
	Register(ms, "QLinearGlobalAveragePool", 1, newQLinearGlobalAveragePool)
	Register(ms, "QLinearAveragePool", 1, newQLinearAveragePool)
	Register(ms, "QGemm", 1, newQGemm)
}

// qlIn is input i, nil when omitted or past the end.
func qlIn(in []*graph.Tensor, i int) *graph.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// qlUnaryInputs checks a one-input op's X (int8 or uint8) and reads its
// scale and zero point (inputs 1, 2) and the output's (3, 4), named with
// the op's spelling of x and y.
func qlUnaryInputs(op string, in []*graph.Tensor, xName, yName string) (x *graph.Tensor, xs float32, xz int32, ys float32, yz int32, err error) {
	x = qlIn(in, 0)
	if err = qlWant8(op, "X", x); err != nil {
		return
	}
	if xs, xz, err = qlParams(op, xName, in, 1, x.DType); err != nil {
		return
	}
	ys, yz, err = qlParams(op, yName, in, 3, x.DType)
	return
}

// qlWant8 checks a quantized input is present and int8 or uint8.
func qlWant8(op, name string, t *graph.Tensor) error {
	if t == nil {
		return fmt.Errorf("%s: input %s is required", op, name)
	}
	if t.DType != graph.Uint8 && t.DType != graph.Int8 {
		return fmt.Errorf("%s: %s must be uint8 or int8, got %s", op, name, t.DType.Short())
	}
	return nil
}

// qlScale reads a per-tensor scale: one float32, finite and nonzero.
func qlScale(op, name string, s *graph.Tensor) (float32, error) {
	if s == nil {
		return 0, fmt.Errorf("%s: input %s is required", op, name)
	}
	if s.DType != graph.Float || s.Len() != 1 || s.Rank() > 1 {
		return 0, fmt.Errorf("%s: %s must be one float32 (a scalar or a 1-element vector), got %s %v", op, name, s.DType.Short(), s.Shape)
	}
	v := s.Float32s()[0]
	if v == 0 || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return 0, fmt.Errorf("%s: %s is %g; a scale must be finite and nonzero", op, name, v)
	}
	return v, nil
}

// qlZeroPoint reads a per-tensor zero point of type dt (0 when omitted).
func qlZeroPoint(op, name string, z *graph.Tensor, dt graph.DataType) (int32, error) {
	if z == nil {
		return 0, nil
	}
	if z.DType != dt || z.Len() != 1 || z.Rank() > 1 {
		return 0, fmt.Errorf("%s: %s must be one %s (a scalar or a 1-element vector) like its tensor, got %s %v", op, name, dt.Short(), z.DType.Short(), z.Shape)
	}
	return int32(readInt64s(z)[0]), nil
}

// qlParams reads the scale at in[si] and the zero point at in[si+1] of a
// tensor of type dt; prefix names them in errors ("X" gives X_scale).
func qlParams(op, prefix string, in []*graph.Tensor, si int, dt graph.DataType) (float32, int32, error) {
	s, err := qlScale(op, prefix+"_scale", qlIn(in, si))
	if err != nil {
		return 0, 0, err
	}
	z, err := qlZeroPoint(op, prefix+"_zero_point", qlIn(in, si+1), dt)
	return s, z, err
}

// qlCodes reads an 8-bit tensor as int32 codes.
func qlCodes(t *graph.Tensor) []int32 {
	out := make([]int32, t.Len())
	switch d := t.Data().(type) {
	case []uint8:
		for i, v := range d {
			out[i] = int32(v)
		}
	case []int8:
		for i, v := range d {
			out[i] = int32(v)
		}
	}
	return out
}

// qlStore writes codes already in t's range into t (8-bit).
func qlStore(t *graph.Tensor, codes []int32) {
	switch d := t.Data().(type) {
	case []uint8:
		for i, v := range codes {
			d[i] = uint8(v)
		}
	case []int8:
		for i, v := range codes {
			d[i] = int8(v)
		}
	}
}

// qlRound is the code of a float already divided by the scale, with the zero
// point added: round half to even, saturated to [lo, hi].
func qlRound(v float32, lo, hi float64) int32 {
	return int32(max(lo, min(hi, math.RoundToEven(float64(v)))))
}

// ---- QLinearAdd, QLinearMul ----
//
// Inputs: A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale,
// C_zero_point?; numpy broadcasting of A and B.

func newQLinearBinary(op string) Factory {
	return func(*NodeInfo) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			a, b := qlIn(in, 0), qlIn(in, 3)
			if err := qlWant8(op, "A", a); err != nil {
				return nil, err
			}
			if b == nil || b.DType != a.DType {
				return nil, fmt.Errorf("%s: B must be %s like A", op, a.DType.Short())
			}
			sa, za, err := qlParams(op, "A", in, 1, a.DType)
			if err != nil {
				return nil, err
			}
			sb, zb, err := qlParams(op, "B", in, 4, a.DType)
			if err != nil {
				return nil, err
			}
			sc, zc, err := qlParams(op, "C", in, 6, a.DType)
			if err != nil {
				return nil, err
			}
			shape, err := broadcastShape(a.Shape, b.Shape)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			lo, hi, _ := QuantRange(a.DType)
			out := ctx.Empty(a.DType, shape)
			st := [][]int{bcastStrides(a.Shape, shape), bcastStrides(b.Shape, shape), stridesOf(shape)}
			p := qlBinary{op: op, sa: sa, za: za, sb: sb, zb: zb, sc: sc, zc: zc, lo: float32(lo), hi: float32(hi)}
			var run func(offs []int, n int, inner []int)
			switch od := out.Data().(type) {
			case []uint8:
				run = qlBinaryRun(p, a.Data().([]uint8), b.Data().([]uint8), od)
			case []int8:
				run = qlBinaryRun(p, a.Data().([]int8), b.Data().([]int8), od)
			}
			parallelIter(threadsFor(ctx, out.Len(), minStreamWork), shape, st, run)
			return one(out), nil
		}), nil
	}
}

// qlBinary is a QLinearAdd or QLinearMul's op, scales, zero points and
// output range.
type qlBinary struct {
	op         string
	sa, sb, sc float32
	za, zb, zc int32
	lo, hi     float32
}

// qlBinaryRun computes one broadcast run of the op into out, as MLAS's
// kernels do (vec.QLinearAdd8 and vec.QLinearMul8 where the run is
// contiguous and the other side contiguous or one value).
//
// QLinearAdd works in ratios of the scales to C's: (a-za)*sa/sc +
// (b-zb)*sb/sc + zc as fma(a, ra, fma(b, rb, zc - fma(ra, za, rb*zb))),
// with MLAS's operands: x the run, y the other (one value when its stride
// is 0); a run of one element takes MLAS's first-operand-single path,
// fma(y, ry, fma(x, rx, fixed)). The fused steps are where ORT's build
// fuses them, found by comparing all 65536 code pairs. QLinearMul takes
// the exact integer product of the centred codes times one ratio
// sa*sb/sc, plus zc.
func qlBinaryRun[T uint8 | int8](p qlBinary, av, bv, out []T) func(offs []int, n int, inner []int) {
	ra, rb := p.sa/p.sc, p.sb/p.sc
	ratio := float32(p.sa*p.sb) / p.sc
	code := func(v float32) T { return T(max(p.lo, min(p.hi, float32(math.RoundToEven(float64(v)))))) }
	return func(offs []int, n int, inner []int) {
		pa, pb, po := offs[0], offs[1], offs[2]
		x, y, rx, ry, zx, zy, dx, dy := av, bv, ra, rb, p.za, p.zb, inner[0], inner[1]
		if inner[0] == 0 {
			x, y, rx, ry, zx, zy, dx, dy = bv, av, rb, ra, p.zb, p.za, inner[1], inner[0]
			pa, pb = pb, pa
		}
		o := out[po : po+n]
		if p.op == "QLinearMul" {
			if dx == 1 && (dy == 0 || dy == 1) {
				vec.QLinearMul8(o, x[pa:], y[pb:], dy, zx, zy, ratio, float32(p.zc), p.lo, p.hi)
				return
			}
			for i := range o {
				v := (int32(x[pa+i*dx]) - zx) * (int32(y[pb+i*dy]) - zy)
				o[i] = code(float32(float32(v)*ratio) + float32(p.zc))
			}
			return
		}
		// ORT's build contracts ra*za + rb*zb into one fused multiply-add.
		fixed := float32(p.zc) - vec.FMA32(rx, float32(zx), float32(ry*float32(zy)))
		switch {
		case n == 1:
			// MLAS treats a one-element first operand as the single value.
			o[0] = code(vec.FMA32(float32(y[pb]), ry, vec.FMA32(float32(x[pa]), rx, fixed)))
		case dx == 1 && (dy == 0 || dy == 1):
			vec.QLinearAdd8(o, x[pa:], y[pb:], dy, rx, ry, fixed, p.lo, p.hi)
		default:
			for i := range o {
				o[i] = code(vec.FMA32(float32(x[pa+i*dx]), rx, vec.FMA32(float32(y[pb+i*dy]), ry, fixed)))
			}
		}
	}
}

// ---- table ops: QLinearSigmoid, QLinearLeakyRelu, QLinearConcat ----

// qlTable maps each of the 256 codes of an 8-bit type through f: dequantize,
// f in float32, quantize (QuantizeLinear's rounding), as ORT builds its table.
func qlTable(dt graph.DataType, xs float32, xz int32, ys float32, yz int32, f func(float32) float32) *[256]byte {
	lo, hi, _ := QuantRange(dt)
	var t [256]byte
	for i := range t {
		v := int32(i)
		if dt == graph.Int8 {
			v = int32(int8(uint8(i)))
		}
		t[i] = byte(QuantizeValue(f(xs*float32(v-xz)), ys, yz, lo, hi))
	}
	return &t
}

// qlMapBytes maps the codes of src through table into dst (same 8-bit type).
func qlMapBytes(dst, src *graph.Tensor, table *[256]byte) {
	vec.Lookup8(rawBytes(dst), rawBytes(src), table)
}

// newQLinearLookup is an elementwise op on X, X_scale, X_zero_point?,
// Y_scale, Y_zero_point?, through the 256-entry table of f (built from the
// node's attributes).
func newQLinearLookup(op string, build func(*attrs) func(float32) float32) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		f := build(a)
		if a.err != nil {
			return nil, fmt.Errorf("%s: %v", op, a.err)
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			x, xs, xz, ys, yz, err := qlUnaryInputs(op, in, "X", "Y")
			if err != nil {
				return nil, err
			}
			out := ctx.Empty(x.DType, x.Shape)
			qlMapBytes(out, x, qlTable(x.DType, xs, xz, ys, yz, f))
			return one(out), nil
		}), nil
	}
}

// newQLinearConcat concatenates (tensor, scale, zero point) triples along
// axis into Y's quantization: inputs Y_scale, Y_zero_point, then the triples.
// A tensor already in Y's scale and zero point is copied; the others go
// through a dequantize-quantize table.
func newQLinearConcat(ni *NodeInfo) (Kernel, error) {
	const op = "QLinearConcat"
	if !ni.Node.HasAttr("axis") {
		return nil, fmt.Errorf("%s: the axis attribute is required", op)
	}
	a := attrsOf(ni.Node)
	axis := a.Int("axis", 0)
	if a.err != nil {
		return nil, fmt.Errorf("%s: %v", op, a.err)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) < 5 || (len(in)-2)%3 != 0 {
			return nil, fmt.Errorf("%s: want Y_scale, Y_zero_point and (tensor, scale, zero point) triples, got %d inputs", op, len(in))
		}
		yzT := in[1]
		if yzT == nil {
			return nil, fmt.Errorf("%s: Y_zero_point is required (it sets the output type)", op)
		}
		if err := qlWant8(op, "Y_zero_point", yzT); err != nil {
			return nil, err
		}
		dt := yzT.DType
		ys, yz, err := qlParams(op, "Y", in, 0, dt)
		if err != nil {
			return nil, err
		}
		first := in[2]
		for i := 2; i < len(in); i += 3 {
			if in[i] == nil || in[i].DType != dt {
				return nil, fmt.Errorf("%s: input %d must be %s like Y_zero_point", op, i, dt.Short())
			}
			if in[i].Rank() != first.Rank() {
				return nil, fmt.Errorf("%s: input %d has rank %d, input 2 has %d", op, i, in[i].Rank(), first.Rank())
			}
		}
		ax, err := normAxis(axis, first.Rank())
		if err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		shape := append([]int(nil), first.Shape...)
		shape[ax] = 0
		for i := 2; i < len(in); i += 3 {
			for d, v := range in[i].Shape {
				if d != ax && v != first.Shape[d] {
					return nil, fmt.Errorf("%s: input %d has shape %v, input 2 has %v (they may differ only on axis %d)", op, i, in[i].Shape, first.Shape, ax)
				}
			}
			shape[ax] += in[i].Shape[ax]
		}
		outer, inner := graph.Numel(shape[:ax]), graph.Numel(shape[ax+1:])
		out := ctx.Empty(dt, shape)
		outPitch := shape[ax] * inner
		off := 0
		for i := 2; i < len(in); i += 3 {
			xs, err := qlScale(op, fmt.Sprintf("scale of tensor %d", i/3), in[i+1])
			if err != nil {
				return nil, err
			}
			xz, err := qlZeroPoint(op, fmt.Sprintf("zero point of tensor %d", i/3), in[i+2], dt)
			if err != nil {
				return nil, err
			}
			var table *[256]byte
			if xs != ys || xz != yz {
				table = qlTable(dt, xs, xz, ys, yz, func(v float32) float32 { return v })
			}
			pitch := in[i].Shape[ax] * inner
			for o := 0; o < outer; o++ {
				qlPlace(out, in[i], o*outPitch+off, o*pitch, pitch, table)
			}
			off += pitch
		}
		return one(out), nil
	}), nil
}

// qlPlace copies (or maps through table) n codes from src[so:] to dst[do:]
// (8-bit tensors of one type).
func qlPlace(dst, src *graph.Tensor, do, so, n int, table *[256]byte) {
	d, s := rawBytes(dst)[do:do+n], rawBytes(src)[so:so+n]
	if table == nil {
		copy(d, s)
		return
	}
	vec.Lookup8(d, s, table)
}

// ---- QLinearSoftmax ----
//
// Inputs X, X_scale, x_zero_point?, y_scale, y_zero_point?; attributes axis
// and opset (of the Softmax it replaces: before 13, the axis and all after it
// are one row). ORT computes it in float32 from a table of
// exp((v - 255 + shift) * X_scale) for v in 0..255, shift keeping the row sum
// of exponentials in float range; each row is read at (code - row max), so
// the zero point cancels. The output is round(e * floor(1/y_scale) / sum) +
// y_zero_point, saturated. (When floor(1/y_scale) exceeds about 148 times the
// row length, as for one-element rows at 1/256, the largest product
// overflows float32: ORT's uint8 kernel then writes 0, onnxq saturates.)

func newQLinearSoftmax(ni *NodeInfo) (Kernel, error) {
	const op = "QLinearSoftmax"
	if !ni.Node.HasAttr("opset") {
		return nil, fmt.Errorf("%s: the opset attribute is required", op)
	}
	a := attrsOf(ni.Node)
	opset := a.Int("opset", 13)
	def := int64(-1)
	if opset < 13 {
		def = 1
	}
	axis := a.Int("axis", def)
	if a.err != nil {
		return nil, fmt.Errorf("%s: %v", op, a.err)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		x, xs, _, ys, yz, err := qlUnaryInputs(op, in, "X", "y")
		if err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		outer, d, inner := graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
		if opset < 13 {
			d, inner = graph.Numel(x.Shape[ax:]), 1
		}
		out := ctx.Empty(x.DType, x.Shape)
		if x.Len() == 0 {
			return one(out), nil
		}
		table := qlSoftmaxTable(xs, d)
		mult := float32(math.Floor(float64(1 / ys)))
		lo, hi, _ := QuantRange(x.DType)
		xv, res := qlCodes(x), make([]int32, x.Len())
		parallelFor(threadsFor(ctx, x.Len(), 1<<14), outer*inner, func(r0, r1 int) {
			for r := r0; r < r1; r++ {
				base := r/inner*d*inner + r%inner
				top := xv[base]
				for j := 1; j < d; j++ {
					top = max(top, xv[base+j*inner])
				}
				var sum float32
				for j := 0; j < d; j++ {
					sum += table[xv[base+j*inner]-top+255]
				}
				for j := 0; j < d; j++ {
					e := table[xv[base+j*inner]-top+255]
					res[base+j*inner] = qlRound(float32(e*mult)/sum, lo-float64(yz), hi-float64(yz)) + yz
				}
			}
		})
		qlStore(out, res)
		return one(out), nil
	}), nil
}

// qlSoftmaxTable is ORT's exponential table for rows of d codes: entry i is
// exp((i - 255 + shift) * scale), in float64 rounded to float32, with shift
// (in codes) as large as keeps a row's sum below the float32 maximum.
func qlSoftmaxTable(scale float32, d int) *[256]float32 {
	shift := max(0, math.Log(float64(float32(math.MaxFloat32)/float32(d)))-5) / float64(scale)
	var t [256]float32
	for i := range t {
		t[i] = float32(math.Exp((float64(i) - 255 + shift) * float64(scale)))
	}
	return &t
}

// ---- QGemm ----
//
// Inputs A, a_scale, a_zero_point, B, b_scale, b_zero_point, C?, y_scale?,
// y_zero_point?; attributes transA, transB, alpha. The int32 accumulators
// (C, an int32 bias in the scale alpha*a_scale*b_scale, plus the product of
// the centered codes) are scaled by alpha*a_scale*b_scale[n] (divided by
// y_scale when given): float32 output without y_zero_point, else quantized
// to y_zero_point's type. b_scale and b_zero_point are per tensor or per
// column.

func newQGemm(ni *NodeInfo) (Kernel, error) {
	const op = "QGemm"
	a := attrsOf(ni.Node)
	transA, transB := a.Int("transA", 0) != 0, a.Int("transB", 0) != 0
	alpha := a.Float("alpha", 1)
	if a.err != nil {
		return nil, fmt.Errorf("%s: %v", op, a.err)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		A, B := qlIn(in, 0), qlIn(in, 3)
		if err := qlWant8(op, "A", A); err != nil {
			return nil, err
		}
		if err := qlWant8(op, "B", B); err != nil {
			return nil, err
		}
		if A.Rank() != 2 || B.Rank() != 2 {
			return nil, fmt.Errorf("%s: A %v and B %v must be matrices", op, A.Shape, B.Shape)
		}
		m, k := A.Shape[0], A.Shape[1]
		if transA {
			m, k = k, m
		}
		kb, n := B.Shape[0], B.Shape[1]
		if transB {
			kb, n = n, kb
		}
		if k != kb {
			return nil, fmt.Errorf("%s: A %v (transA %v) and B %v (transB %v) do not multiply", op, A.Shape, transA, B.Shape, transB)
		}
		as, az, err := qlParams(op, "a", in, 1, A.DType)
		if err != nil {
			return nil, err
		}
		bs, bz, err := qlColumnParams(op, qlIn(in, 4), qlIn(in, 5), B.DType, n)
		if err != nil {
			return nil, err
		}
		ysT, yzT := qlIn(in, 7), qlIn(in, 8)
		outDT, ys, yz := graph.Float, float32(1), int32(0)
		if yzT != nil {
			if ysT == nil {
				return nil, fmt.Errorf("%s: y_zero_point needs y_scale", op)
			}
			if err := qlWant8(op, "y_zero_point", yzT); err != nil {
				return nil, err
			}
			outDT = yzT.DType
			if yz, err = qlZeroPoint(op, "y_zero_point", yzT, outDT); err != nil {
				return nil, err
			}
		}
		// ORT divides by y_scale even when the output stays float.
		if ysT != nil {
			if ys, err = qlScale(op, "y_scale", ysT); err != nil {
				return nil, err
			}
		}
		// Centered codes as row-major [m, k] and [k, n].
		// (in float32, for the exact integer product on the float GEMM: intGemm).
		ac, bc := qlCodes(A), qlCodes(B)
		am, bm := ctx.Scratch(m*k), ctx.Scratch(k*n)
		defer ctx.Release(am)
		defer ctx.Release(bm)
		for i := 0; i < m; i++ {
			for p := 0; p < k; p++ {
				src := i*k + p
				if transA {
					src = p*m + i
				}
				am[i*k+p] = float32(ac[src] - az)
			}
		}
		for p := 0; p < k; p++ {
			for j := 0; j < n; j++ {
				src := p*n + j
				if transB {
					src = j*k + p
				}
				bm[p*n+j] = float32(bc[src] - bz[min(j, len(bz)-1)])
			}
		}
		acc := make([]int32, m*n)
		intGemm(ctx, m, n, k, intChunkFor(maxAbs(am), maxAbs(bm)), am, bm, nil, acc)
		if c := qlIn(in, 6); c != nil {
			if err := qlAddBias(acc, c, m, n); err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
		}
		scales := make([]float32, len(bs))
		for j, s := range bs {
			scales[j] = float32(alpha*as) * s / ys
		}
		out := ctx.Empty(outDT, []int{m, n})
		if outDT == graph.Float {
			y := out.Float32s()
			for i, v := range acc {
				y[i] = float32(v) * scales[min(i%n, len(scales)-1)]
			}
			return one(out), nil
		}
		lo, hi, _ := QuantRange(outDT)
		for i, v := range acc {
			acc[i] = qlRound(float32(v)*scales[min(i%n, len(scales)-1)], lo-float64(yz), hi-float64(yz)) + yz
		}
		qlStore(out, acc)
		return one(out), nil
	}), nil
}

// qlColumnParams reads QGemm's b_scale and b_zero_point: one value or one per
// column of the n columns.
func qlColumnParams(op string, s, z *graph.Tensor, dt graph.DataType, n int) ([]float32, []int32, error) {
	if s == nil {
		return nil, nil, fmt.Errorf("%s: input b_scale is required", op)
	}
	if s.DType != graph.Float || s.Rank() > 1 || (s.Len() != 1 && s.Len() != n) {
		return nil, nil, fmt.Errorf("%s: b_scale must be float32 with 1 or %d (columns) values, got %s %v", op, n, s.DType.Short(), s.Shape)
	}
	scales := s.Float32s()
	for _, v := range scales {
		if v == 0 || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("%s: b_scale has %g; a scale must be finite and nonzero", op, v)
		}
	}
	if z == nil {
		return scales, []int32{0}, nil
	}
	if z.DType != dt || z.Rank() > 1 || (z.Len() != 1 && z.Len() != n) {
		return nil, nil, fmt.Errorf("%s: b_zero_point must be %s like B with 1 or %d (columns) values, got %s %v", op, dt.Short(), n, z.DType.Short(), z.Shape)
	}
	return scales, qlCodes(z), nil
}

// qlAddBias adds QGemm's int32 C, broadcast one way to [m, n], into acc.
func qlAddBias(acc []int32, c *graph.Tensor, m, n int) error {
	if c.DType != graph.Int32 {
		return fmt.Errorf("C must be int32, got %s", c.DType.Short())
	}
	if c.Rank() > 2 {
		return fmt.Errorf("C has shape %v, want one broadcastable to [%d %d]", c.Shape, m, n)
	}
	r, w := 1, 1 // C's rows and columns
	switch c.Rank() {
	case 1:
		w = c.Shape[0]
	case 2:
		r, w = c.Shape[0], c.Shape[1]
	}
	if (r != 1 && r != m) || (w != 1 && w != n) {
		return fmt.Errorf("C has shape %v, want one broadcastable to [%d %d]", c.Shape, m, n)
	}
	cv := graph.Elems[int32](c)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			acc[i*n+j] += cv[min(i, r-1)*w+min(j, w-1)]
		}
	}
	return nil
}
