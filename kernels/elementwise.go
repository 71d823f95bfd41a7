package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- unary float ops ----

// sliceFn maps src to dst elementwise (dst and src have the same length and may alias).
type sliceFn func(dst, src []float32)

// pointwise makes a sliceFn from a scalar function.
func pointwise(f func(float32) float32) sliceFn {
	return func(dst, src []float32) {
		for i, v := range src {
			dst[i] = f(v)
		}
	}
}

// unaryFloat registers a float32 op that maps each element independently.
func unaryFloat(op string, since int64, mk func(a *attrs, ni *NodeInfo) (sliceFn, error)) {
	activations[op] = func(ni *NodeInfo) (sliceFn, error) {
		if ni.Opset < since {
			return nil, nil
		}
		a := attrsOf(ni.Node)
		fn, err := mk(a, ni)
		if err == nil {
			err = a.err
		}
		return fn, err
	}
	Register("", op, since, func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		fn, err := mk(a, ni)
		if err == nil {
			err = a.err
		}
		if err != nil {
			return nil, err
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if x.DType != graph.Float {
				return nil, fmt.Errorf("%s on %s is not supported (float32 only)", op, x.DType.Short())
			}
			out := ctx.Float32(x.Shape)
			applySlice(ctx, fn, out.Float32s(), x.Float32s())
			return one(out), nil
		}), nil
	})
}

// applySlice runs fn over src into dst, a block of unaryBlock floats at a
// time within each thread's share: an fn of several passes (HardSigmoid's
// affine then clip, Selu's Elu then scale) then reads its block back from
// L2 instead of making each pass over the whole tensor. On 1x256x56x56
// (survey, old and new alternating): HardSigmoid 0.125-0.131 -> 0.111-0.113
// ms (ORT 0.097-0.105), Selu 0.165 -> 0.150-0.157; single-pass ops alike.
// Blocks of 4096 made Selu slower (0.181-0.195): each call of vec.Elu has
// a cost of its own.
func applySlice(ctx *Context, fn sliceFn, dst, src []float32) {
	parallelFor(threadsFor(ctx, len(src), minStreamWork), len(src), func(lo, hi int) {
		for b := lo; b < hi; b += unaryBlock {
			e := min(hi, b+unaryBlock)
			fn(dst[b:e], src[b:e])
		}
	})
}

// unaryBlock is the block applySlice hands fn (64 KiB of input and as much
// output: within L2).
const unaryBlock = 16384

func simple(f func(float32) float32) func(*attrs, *NodeInfo) (sliceFn, error) {
	return func(*attrs, *NodeInfo) (sliceFn, error) { return pointwise(f), nil }
}

func f64(f func(float64) float64) func(float32) float32 {
	return func(x float32) float32 { return float32(f(float64(x))) }
}

func vecFn(f func(dst, src []float32)) func(*attrs, *NodeInfo) (sliceFn, error) {
	return func(*attrs, *NodeInfo) (sliceFn, error) { return f, nil }
}

// hardSwish is x * clip(x/6 + 1/2, 0, 1), in one pass.
func hardSwish(dst, src []float32) { vec.HardSwish(dst, src) }

func init() {
	unaryFloat("Relu", 1, func(*attrs, *NodeInfo) (sliceFn, error) {
		// NaN is not < 0 and passes through.
		return func(dst, src []float32) { vec.Clip(dst, src, 0, float32(math.Inf(1))) }, nil
	})
	// The transcendentals run as float32 polynomials in kernels/vec (AVX2 where
	// available), within a few ulps of float64 (bounds in vec's documentation).
	unaryFloat("Sigmoid", 1, vecFn(vec.Sigmoid))
	unaryFloat("Tanh", 1, vecFn(vec.Tanh))
	unaryFloat("Exp", 1, vecFn(vec.Exp))
	unaryFloat("Log", 1, vecFn(vec.Log))
	unaryFloat("Sqrt", 1, vecFn(vec.Sqrt))
	unaryFloat("Reciprocal", 1, vecFn(vec.Reciprocal))
	unaryFloat("Erf", 9, vecFn(vec.Erf))
	unaryFloat("Floor", 1, vecFn(vec.Floor))
	unaryFloat("Ceil", 1, vecFn(vec.Ceil))
	unaryFloat("Round", 11, vecFn(vec.RoundEven))
	unaryFloat("Sin", 7, simple(f64(math.Sin)))
	unaryFloat("Cos", 7, simple(f64(math.Cos)))
	unaryFloat("Softplus", 1, vecFn(vec.Softplus))
	unaryFloat("Softsign", 1, simple(func(x float32) float32 { return x / (1 + float32(math.Abs(float64(x)))) }))
	unaryFloat("LeakyRelu", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha := a.Float("alpha", 0.01)
		return func(dst, src []float32) { vec.LeakyRelu(dst, src, alpha) }, nil
	})
	unaryFloat("Elu", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha := a.Float("alpha", 1)
		return func(dst, src []float32) { vec.Elu(dst, src, alpha) }, nil
	})
	unaryFloat("Selu", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha := a.Float("alpha", 1.67326319217681884765625)
		gamma := a.Float("gamma", 1.05070102214813232421875)
		// gamma * Elu(x, alpha): alpha*e^x - alpha is alpha*expm1(x) without the cancellation.
		return func(dst, src []float32) {
			vec.Elu(dst, src, alpha)
			vec.MulScalar(dst, dst, gamma)
		}, nil
	})
	unaryFloat("HardSigmoid", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha, beta := a.Float("alpha", 0.2), a.Float("beta", 0.5)
		return func(dst, src []float32) {
			vec.Affine(dst, src, alpha, beta)
			vec.Clip(dst, dst, 0, 1)
		}, nil
	})
	// HardSwish is x * HardSigmoid(x) with alpha 1/6, beta 1/2, as the spec writes it.
	unaryFloat("HardSwish", 14, func(*attrs, *NodeInfo) (sliceFn, error) { return hardSwish, nil })
	unaryFloat("Gelu", 20, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		switch a.String("approximate", "none") {
		case "none":
			return vec.GeluErf, nil
		case "tanh":
			return vec.GeluTanh, nil
		}
		return nil, fmt.Errorf("Gelu approximate must be none or tanh")
	})
	// ThresholdedRelu was experimental before opset 10: the same op.
	unaryFloat("ThresholdedRelu", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha := a.Float("alpha", 1)
		return pointwise(func(x float32) float32 {
			if x > alpha {
				return x
			}
			return 0
		}), nil
	})
	unaryFloat("Celu", 12, func(a *attrs, _ *NodeInfo) (sliceFn, error) { return celu(a.Float("alpha", 1)) })
	unaryFloat("Mish", 18, vecFn(vec.Mish))

	// Ops defined for numbers of every type.
	unaryNumeric("Neg", 1, func(x float64) float64 { return -x }, vec.Neg)
	unaryNumeric("Abs", 1, math.Abs, vec.Abs)
	unaryNumeric("Sign", 9, func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x
	}, nil)
	Register("", "Clip", 1, newClip)
	activations["Clip"] = clipActivation
	Register("", "Not", 1, func(*NodeInfo) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x, ok := in[0].Data().([]bool)
			if !ok {
				return nil, fmt.Errorf("Not needs a bool tensor")
			}
			out := ctx.Empty(graph.Bool, in[0].Shape) // every element is written below
			o := out.Data().([]bool)
			for i, v := range x {
				o[i] = !v
			}
			return one(out), nil
		}), nil
	})
	for _, op := range []string{"IsNaN", "IsInf"} {
		op := op
		Register("", op, 9, func(ni *NodeInfo) (Kernel, error) {
			a := attrsOf(ni.Node)
			pos, neg := a.Int("detect_positive", 1) != 0, a.Int("detect_negative", 1) != 0
			return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
				if err := need(in, 1); err != nil {
					return nil, err
				}
				x, err := in[0].AsFloat32()
				if err != nil {
					return nil, err
				}
				out := ctx.Empty(graph.Bool, in[0].Shape) // every element is written below
				o := out.Data().([]bool)
				for i, v := range x {
					if op == "IsNaN" {
						o[i] = v != v
					} else {
						o[i] = (pos && math.IsInf(float64(v), 1)) || (neg && math.IsInf(float64(v), -1))
					}
				}
				return one(out), nil
			}), a.err
		})
	}
}

// unaryNumeric registers an op applied to every numeric element type through float64
// (exact for all int32 and float values; int64 beyond 2^53 is not expected here);
// float32 tensors go through f32 instead when it is not nil (the same values,
// vectorized, into a pooled buffer).
func unaryNumeric(op string, since int64, f func(float64) float64, f32 sliceFn) {
	Register("", op, since, func(*NodeInfo) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if f32 != nil && x.DType == graph.Float {
				out := ctx.Float32(x.Shape)
				applySlice(ctx, f32, out.Float32s(), x.Float32s())
				return one(out), nil
			}
			out := ctx.Empty(x.DType, x.Shape) // every case writes every element
			switch d := x.Data().(type) {
			case []float32:
				o := out.Float32s()
				for i, v := range d {
					o[i] = float32(f(float64(v)))
				}
			case []float64:
				mapNum(d, out.Data().([]float64), f)
			case []int8:
				mapNum(d, out.Data().([]int8), f)
			case []int16:
				mapNum(d, out.Data().([]int16), f)
			case []int32:
				mapNum(d, out.Data().([]int32), f)
			case []int64:
				o := out.Data().([]int64)
				for i, v := range d {
					if op == "Neg" {
						o[i] = -v
					} else {
						o[i] = int64(f(float64(v)))
					}
				}
			case []uint8:
				mapNum(d, out.Data().([]uint8), f)
			case []uint16:
				mapNum(d, out.Data().([]uint16), f)
			case []uint32:
				mapNum(d, out.Data().([]uint32), f)
			case []uint64:
				mapNum(d, out.Data().([]uint64), f)
			default:
				return nil, fmt.Errorf("%s on %s is not supported", op, x.DType.Short())
			}
			return one(out), nil
		}), nil
	})
}

type number interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func mapNum[T number](src, dst []T, f func(float64) float64) {
	for i, v := range src {
		dst[i] = T(f(float64(v)))
	}
}

// newClip handles both forms: min/max attributes (before opset 11) and optional
// min/max inputs (11 on); numbers of any type.
func newClip(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	lo := a.Float("min", float32(math.Inf(-1)))
	hi := a.Float("max", float32(math.Inf(1)))
	if a.err != nil {
		return nil, a.err
	}
	attrForm := ni.Opset < 11
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.DType != graph.Float {
			return clipGeneric(in)
		}
		l, h := lo, hi
		if !attrForm {
			l, h = float32(math.Inf(-1)), float32(math.Inf(1))
			if len(in) > 1 && in[1] != nil {
				if in[1].Len() != 1 || in[1].DType != graph.Float {
					return nil, fmt.Errorf("Clip min must be a float32 scalar")
				}
				l = in[1].Float32s()[0]
			}
			if len(in) > 2 && in[2] != nil {
				if in[2].Len() != 1 || in[2].DType != graph.Float {
					return nil, fmt.Errorf("Clip max must be a float32 scalar")
				}
				h = in[2].Float32s()[0]
			}
		}
		out := ctx.Float32(x.Shape)
		// min(max(x, lo), hi), as the spec defines it (hi wins when lo > hi)
		applySlice(ctx, func(dst, src []float32) { vec.Clip(dst, src, l, h) }, out.Float32s(), x.Float32s())
		return one(out), nil
	}), nil
}

// clipActivation is Clip in fusable form, when its bounds are known at compile time.
func clipActivation(ni *NodeInfo) (sliceFn, error) {
	lo, hi, ok, err := clipBounds(ni)
	if err != nil || !ok {
		return nil, err // bounds computed at run time: not fusable
	}
	return func(dst, src []float32) { vec.Clip(dst, src, lo, hi) }, nil
}

// clipBounds returns Clip's bounds (from attributes before opset 11, from
// constant inputs after), or false when an input computes them at run time.
func clipBounds(ni *NodeInfo) (lo, hi float32, ok bool, err error) {
	a := attrsOf(ni.Node)
	lo = a.Float("min", float32(math.Inf(-1)))
	hi = a.Float("max", float32(math.Inf(1)))
	if a.err != nil {
		return 0, 0, false, a.err
	}
	if ni.Opset >= 11 {
		lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
		for i, b := range []*float32{&lo, &hi} {
			if ni.Node.Input(i+1) == nil {
				continue
			}
			c := ni.Const(i + 1)
			if c == nil || c.DType != graph.Float || c.Len() != 1 {
				return 0, 0, false, nil
			}
			*b = c.Float32s()[0]
		}
	}
	return lo, hi, true, nil
}

func clipGeneric(in []*graph.Tensor) ([]*graph.Tensor, error) {
	x := in[0]
	bound := func(i int) (float64, bool, error) {
		if len(in) <= i || in[i] == nil {
			return 0, false, nil
		}
		v, err := scalarFloat64(in[i])
		return v, true, err
	}
	lo, hasLo, err := bound(1)
	if err != nil {
		return nil, err
	}
	hi, hasHi, err := bound(2)
	if err != nil {
		return nil, err
	}
	out := x.Clone()
	f := func(v float64) float64 {
		if hasLo && v < lo {
			v = lo
		}
		if hasHi && v > hi {
			v = hi
		}
		return v
	}
	switch d := out.Data().(type) {
	case []int8:
		mapNum(d, d, f)
	case []uint8:
		mapNum(d, d, f)
	case []int16:
		mapNum(d, d, f)
	case []uint16:
		mapNum(d, d, f)
	case []int32:
		mapNum(d, d, f)
	case []int64:
		mapNum(d, d, f)
	case []uint32:
		mapNum(d, d, f)
	case []uint64:
		mapNum(d, d, f)
	case []float64:
		mapNum(d, d, f)
	default:
		return nil, fmt.Errorf("Clip on %s is not supported", x.DType.Short())
	}
	return one(out), nil
}

// scalarFloat64 reads a one-element tensor of any real type.
func scalarFloat64(t *graph.Tensor) (float64, error) {
	if t.Len() != 1 {
		return 0, fmt.Errorf("expected a scalar, got shape %v", t.Shape)
	}
	switch d := t.Data().(type) {
	case []float32:
		return float64(d[0]), nil
	case []float64:
		return d[0], nil
	case []int8:
		return float64(d[0]), nil
	case []uint8:
		return float64(d[0]), nil
	case []int16:
		return float64(d[0]), nil
	case []uint16:
		return float64(d[0]), nil
	case []int32:
		return float64(d[0]), nil
	case []uint32:
		return float64(d[0]), nil
	case []int64:
		return float64(d[0]), nil
	case []uint64:
		return float64(d[0]), nil
	case []graph.Float16Bits:
		return float64(d[0].Float32()), nil
	}
	return 0, fmt.Errorf("expected a number, got %s", t.DType.Short())
}
