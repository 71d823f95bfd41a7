package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// reduceSpec is a reduction: the accumulator's start, how to fold a value in,
// and how to finish (n is the count of reduced elements).
type reduceSpec struct {
	init   float64
	fold   func(acc, v float64) float64
	finish func(acc float64, n int) float64
}

var reductions = map[string]reduceSpec{
	"ReduceSum":       {0, func(a, v float64) float64 { return a + v }, nil},
	"ReduceMean":      {0, func(a, v float64) float64 { return a + v }, func(a float64, n int) float64 { return a / float64(n) }},
	"ReduceMax":       {math.Inf(-1), math.Max, nil},
	"ReduceMin":       {math.Inf(1), math.Min, nil},
	"ReduceProd":      {1, func(a, v float64) float64 { return a * v }, nil},
	"ReduceL1":        {0, func(a, v float64) float64 { return a + math.Abs(v) }, nil},
	"ReduceL2":        {0, func(a, v float64) float64 { return a + v*v }, func(a float64, _ int) float64 { return math.Sqrt(a) }},
	"ReduceSumSquare": {0, func(a, v float64) float64 { return a + v*v }, nil},
	"ReduceLogSum":    {0, func(a, v float64) float64 { return a + v }, func(a float64, _ int) float64 { return math.Log(a) }},
	"ReduceLogSumExp": {0, func(a, v float64) float64 { return a + math.Exp(v) }, func(a float64, _ int) float64 { return math.Log(a) }},
}

// axesAsInput is the opset from which each reduction takes axes as an input.
func axesAsInput(op string) int64 {
	if op == "ReduceSum" {
		return 13
	}
	return 18
}

func newReduce(op string) Factory {
	spec := reductions[op]
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		keep := a.Int("keepdims", 1) != 0
		noopEmpty := a.Int("noop_with_empty_axes", 0) != 0
		attrAxes := a.Ints("axes", nil)
		fromInput := ni.Opset >= axesAsInput(op)
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			axes, err := axesFrom(in, 1, attrAxes, fromInput)
			if err != nil {
				return nil, err
			}
			r := x.Rank()
			red := make([]bool, r)
			if len(axes) == 0 {
				if noopEmpty {
					return one(x), nil
				}
				for i := range red {
					red[i] = true
				}
			}
			for _, ax := range axes {
				i, err := normAxis(ax, r)
				if err != nil {
					return nil, err
				}
				red[i] = true
			}
			var outShape, keptShape []int
			for i, d := range x.Shape {
				if red[i] {
					keptShape = append(keptShape, 1)
					if keep {
						outShape = append(outShape, 1)
					}
				} else {
					keptShape = append(keptShape, d)
					outShape = append(outShape, d)
				}
			}
			xf, isF32 := x.Data().([]float32)
			if isF32 {
				if outer, n, inner, ok := reduceRun(x.Shape, red); ok && !noFastReduce {
					if fast := fastReductions[op]; fast != nil {
						out := ctx.Float32(outShape)
						fast(ctx, out.Float32s(), xf, outer, n, inner)
						return one(out), nil
					}
				}
			}
			// float32 is folded as it is read: a float64 copy of every input
			// would be the largest allocation of a run (RMSNorm's ReduceMean).
			var vals []float64
			if !isF32 {
				if vals, err = asFloat64s(x); err != nil {
					return nil, fmt.Errorf("%s: %v", op, err)
				}
			}
			m := graph.Numel(keptShape)
			acc := make([]float64, m)
			for i := range acc {
				acc[i] = spec.init
			}
			n := 1
			for i, d := range x.Shape {
				if red[i] {
					n *= d
				}
			}
			// Walk x; its offset in the kept tensor uses strides with 0 on reduced axes.
			ks := stridesOf(keptShape)
			for i := range ks {
				if red[i] {
					ks[i] = 0
				}
			}
			bcastIter(x.Shape, [][]int{stridesOf(x.Shape), ks}, func(offs []int, cnt int, inner []int) {
				if isF32 {
					for j := 0; j < cnt; j++ {
						k := offs[1] + j*inner[1]
						acc[k] = spec.fold(acc[k], float64(xf[offs[0]+j]))
					}
					return
				}
				for j := 0; j < cnt; j++ {
					k := offs[1] + j*inner[1]
					acc[k] = spec.fold(acc[k], vals[offs[0]+j])
				}
			})
			if spec.finish != nil {
				for i := range acc {
					acc[i] = spec.finish(acc[i], n)
				}
			}
			out := ctx.New(x.DType, outShape)
			if err := storeFloat64s(out, acc); err != nil {
				return nil, err
			}
			return one(out), nil
		}), a.err
	}
}

// asFloat64s reads any real tensor as float64 values (a copy).
func asFloat64s(t *graph.Tensor) ([]float64, error) { return t.AsFloat64() }

// storeFloat64s writes float64 values into a tensor of any real type.
func storeFloat64s(t *graph.Tensor, v []float64) error {
	if storeNumbers(t, v) {
		return nil
	}
	switch d := t.Data().(type) {
	case []graph.Float16Bits:
		for i := range d {
			d[i] = graph.ToFloat16(float32(v[i]))
		}
	case []graph.BFloat16Bits:
		for i := range d {
			d[i] = graph.ToBFloat16(float32(v[i]))
		}
	default:
		return fmt.Errorf("%s results are not supported", t.DType.Short())
	}
	return nil
}

func newArgReduce(isMax bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		axis := a.Int("axis", 0)
		keep := a.Int("keepdims", 1) != 0
		last := a.Int("select_last_index", 0) != 0
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			ax, err := normAxis(axis, x.Rank())
			if err != nil {
				return nil, err
			}
			outer, dim, inner := graph.Numel(x.Shape[:ax]), x.Shape[ax], graph.Numel(x.Shape[ax+1:])
			var shape []int
			for i, d := range x.Shape {
				if i != ax {
					shape = append(shape, d)
				} else if keep {
					shape = append(shape, 1)
				}
			}
			out := graph.NewTensor(graph.Int64, shape)
			od := out.Int64s()
			if xf, ok := x.Data().([]float32); ok {
				argRows(ctx, xf, od, outer, dim, inner, isMax, last)
				return one(out), nil
			}
			vals, err := asFloat64s(x)
			if err != nil {
				return nil, err
			}
			for o := 0; o < outer; o++ {
				for i := 0; i < inner; i++ {
					best, bi := 0.0, 0
					for j := 0; j < dim; j++ {
						v := vals[(o*dim+j)*inner+i]
						better := j == 0 || (isMax && v > best) || (!isMax && v < best) || (last && v == best)
						if better {
							best, bi = v, j
						}
					}
					od[o*inner+i] = int64(bi)
				}
			}
			return one(out), nil
		}), a.err
	}
}

// argOfRow is the index a scan of row picks (the general loop's: b, bi =
// v, j whenever v beats b, from row[0]), found in two passes that need no
// branch per value: the extreme value with NaNs skipped (SIMD), then the
// first (or with last the last) index holding a value equal to it. They
// agree: NaN never beats anything, so a NaN at row[0] keeps index 0 and
// any other NaN is passed over; among the others the scan ends on the
// first (last) of the values equal to the extreme, -0 and +0 alike. A
// 64x8192 ArgMax over the last axis took 5.3x ONNX Runtime's time
// scanning (its branch mispredicted on the Zen 5 VM: 4.4 ns a value).
func argOfRow(row []float32, isMax, last bool) int {
	if row[0] != row[0] {
		return 0
	}
	var m float32
	if isMax {
		m = vec.MaxOf(row)
	} else {
		m, _ = vec.MinMax(row)
	}
	if last {
		for j := len(row) - 1; j > 0; j-- {
			if row[j] == m {
				return j
			}
		}
		return 0
	}
	for j, v := range row {
		if v == m {
			return j
		}
	}
	return 0
}

// argRows is ArgMax (isMax) or ArgMin of float32 x along the middle of
// outer x dim x inner, walking rows of inner values (a segmentation map's
// classes are planes) with the general loop's comparisons, in float32: the
// same winners, the first (or with last the last) of equal values.
func argRows(ctx *Context, x []float32, od []int64, outer, dim, inner int, isMax, last bool) {
	if dim == 0 {
		return
	}
	if inner == 1 { // the last axis: each row on its own
		for o := range outer {
			od[o] = int64(argOfRow(x[o*dim:(o+1)*dim], isMax, last))
		}
		return
	}
	// Blocks of argBlock columns: their running best values and indices stay
	// in L1 while the dim rows stream past, each step one vec.ArgBest
	// (compare and blend, 8 lanes) instead of a branch per value, which
	// mispredicted on a segmentation map's class scores (1x21x512x512:
	// 2.2x ONNX Runtime's time).
	blocks := (inner + argBlock - 1) / argBlock
	parallelFor(threadsFor(ctx, outer*dim*inner, 1<<16), outer*blocks, func(lo, hi int) {
		var best [argBlock]float32
		var ids [argBlock]int32
		for it := lo; it < hi; it++ {
			o, i0 := it/blocks, it%blocks*argBlock
			n := min(argBlock, inner-i0)
			b, id := best[:n], ids[:n]
			copy(b, x[o*dim*inner+i0:])
			clear(id)
			for j := 1; j < dim; j++ {
				vec.ArgBest(b, id, x[(o*dim+j)*inner+i0:][:n], int32(j), isMax, last)
			}
			out := od[o*inner+i0:][:n]
			for i, v := range id {
				out[i] = int64(v)
			}
		}
	})
}

// argBlock is how many columns argRows follows at a time (8 KiB of best
// values and indices).
const argBlock = 1024

func init() {
	for op := range reductions {
		Register("", op, 1, newReduce(op))
	}
	Register("", "ArgMax", 1, newArgReduce(true))
	Register("", "ArgMin", 1, newArgReduce(false))
}

// reduceRun views shape as outer x n x inner with the reduced axes (red)
// the middle n: ok when they are one run once axes of size 1 are left out
// (a last axis, NCHW's spatial axes, its channels), which the fast
// reductions compute without the general walk.
func reduceRun(shape []int, red []bool) (outer, n, inner int, ok bool) {
	outer, n, inner = 1, 1, 1
	state := 0 // 0: before the reduced run, 1: in it, 2: after it
	for i, d := range shape {
		if d == 1 {
			continue
		}
		switch {
		case red[i] && state == 2:
			return 0, 0, 0, false
		case red[i]:
			state = 1
			n *= d
		case state == 0:
			outer *= d
		default:
			state = 2
			inner *= d
		}
	}
	return outer, n, inner, true
}

// noFastReduce sends every reduction through the general walk, for the
// tests that compare.
var noFastReduce = false

// fastReduce computes out[o*inner+i] from x[(o*n+r)*inner+i] over r.
type fastReduce func(ctx *Context, out, x []float32, outer, n, inner int)

// fastReductions are the float32 reductions over one run of axes. Sums
// accumulate in float64 as the general path does (in lanes, so the last bit
// of a float32 result can differ in rare ties); Max and Min are exact, NaN
// propagating and +0 above -0 as math.Max and math.Min have them.
var fastReductions = map[string]fastReduce{
	"ReduceSum":       sumReduce(false, func(s float64, _ int) float64 { return s }),
	"ReduceMean":      sumReduce(false, func(s float64, n int) float64 { return s / float64(n) }),
	"ReduceSumSquare": sumReduce(true, func(s float64, _ int) float64 { return s }),
	"ReduceL2":        sumReduce(true, func(s float64, _ int) float64 { return math.Sqrt(s) }),
	"ReduceMax":       extremeReduce(true),
	"ReduceMin":       extremeReduce(false),
	"ReduceLogSum":    sumReduce(false, func(s float64, _ int) float64 { return math.Log(s) }),
	"ReduceLogSumExp": logSumExpReduce,
}

// logSumExpReduce is ReduceLogSumExp over runs of the last axes (inner 1,
// a classifier's or a CTC head's scores): m + log(sum(exp(x - m))) with m
// the run's maximum, the exponentials and their float64 sum in one vector
// pass (vec.ExpSum, as Softmax's). Shifting by the maximum keeps large
// scores finite: summing exp(x) as the general path does gives +Inf past
// x = 709. A run whose maximum is not finite (NaN, an infinity) takes the
// general path's sum of float64 exponentials. Other layouts (inner > 1)
// take that path's fold for every element. 1x1500x512: 13.3 ms through
// the general path, ONNX Runtime 4.3.
func logSumExpReduce(ctx *Context, out, x []float32, outer, n, inner int) {
	if inner > 1 || n == 0 {
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				s := 0.0
				for r := 0; r < n; r++ {
					s += math.Exp(float64(x[(o*n+r)*inner+i]))
				}
				out[o*inner+i] = float32(math.Log(s))
			}
		}
		return
	}
	parallelFor(threadsFor(ctx, len(x), minStreamWork), outer, func(lo, hi int) {
		tmp := ctx.Scratch(n)
		defer ctx.Release(tmp)
		for o := lo; o < hi; o++ {
			run := x[o*n : (o+1)*n]
			m := vec.MaxOf(run)
			if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
				s := 0.0
				for _, v := range run {
					s += math.Exp(float64(v))
				}
				out[o] = float32(math.Log(s))
				continue
			}
			out[o] = float32(float64(m) + math.Log(vec.ExpSum(tmp, run, m)))
		}
	})
}

// sumReduce sums in float64, or with square the squares: contiguous runs
// with vec.Sum (vec.SumSqDev about 0), rows (inner > 1) added into a
// float64 row.
func sumReduce(square bool, finish func(s float64, n int) float64) fastReduce {
	return func(ctx *Context, out, x []float32, outer, n, inner int) {
		if inner == 1 {
			parallelFor(threadsFor(ctx, len(x), minStreamWork), outer, func(lo, hi int) {
				for o := lo; o < hi; o++ {
					run := x[o*n : (o+1)*n]
					s := 0.0
					if square {
						s = vec.SumSqDev(run, 0)
					} else {
						s = vec.Sum(run)
					}
					out[o] = float32(finish(s, n))
				}
			})
			return
		}
		// Spans of at most sumSpan output columns, as extremeReduce's: the
		// float64 row stays in L1, and one output row (ReduceMean over an
		// image's channels, a LayerNorm written out channels first) is
		// split between threads. Rows add in with vec.WidenAdd, the scalar
		// loop's bits: 1x96x56x56 over the channels 0.14 -> 0.05 ms.
		spans := (inner + sumSpan - 1) / sumSpan
		parallelFor(threadsFor(ctx, len(x), minStreamWork), outer*spans, func(lo, hi int) {
			var buf [sumSpan]float64
			for it := lo; it < hi; it++ {
				o, j0 := it/spans, it%spans*sumSpan
				j1 := min(inner, j0+sumSpan)
				acc := buf[:j1-j0]
				clear(acc)
				for r := 0; r < n; r++ {
					row := x[(o*n+r)*inner+j0 : (o*n+r)*inner+j1]
					if square {
						for i, v := range row {
							acc[i] += float64(v) * float64(v)
						}
					} else {
						vec.WidenAdd(acc, row)
					}
				}
				for i, s := range acc {
					out[o*inner+j0+i] = float32(finish(s, n))
				}
			}
		})
	}
}

// sumSpan is how many output columns a work item of sumReduce adds its
// rows into (8 KiB of float64).
const sumSpan = 1024

// extremeSpan is how many output columns a work item of extremeReduce
// folds its rows into (8 KiB).
const extremeSpan = 2048

// extremeReduce is ReduceMax (isMax) or ReduceMin: math.Max's and math.Min's
// results on float32 (+Inf over NaN over the rest, +0 over -0 for the
// maximum; the mirror for the minimum), whose fold order does not change
// them: rows of a middle axis folded into the output row (vec.MaxInto),
// a last axis's runs in eight lanes (vec.Extreme).
func extremeReduce(isMax bool) fastReduce {
	start := float32(math.Inf(-1))
	if !isMax {
		start = float32(math.Inf(1))
	}
	return func(ctx *Context, out, x []float32, outer, n, inner int) {
		if inner == 1 {
			parallelFor(threadsFor(ctx, len(x), minStreamWork), outer, func(lo, hi int) {
				for o := lo; o < hi; o++ {
					out[o] = vec.Extreme(x[o*n:(o+1)*n], isMax)
				}
			})
			return
		}
		// Work items are spans of at most extremeSpan output columns, which
		// stay in L1 while every row folds in, and split one output row
		// (ReduceMax over the channels of one image) between threads.
		spans := (inner + extremeSpan - 1) / extremeSpan
		parallelFor(threadsFor(ctx, len(x), minStreamWork), outer*spans, func(lo, hi int) {
			for it := lo; it < hi; it++ {
				o, j0 := it/spans, it%spans*extremeSpan
				j1 := min(inner, j0+extremeSpan)
				dst := out[o*inner+j0 : o*inner+j1]
				for i := range dst {
					dst[i] = start
				}
				for r := 0; r < n; r++ {
					row := x[(o*n+r)*inner+j0 : (o*n+r)*inner+j1]
					if isMax {
						vec.MaxInto(dst, row)
					} else {
						vec.MinInto(dst, row)
					}
				}
			}
		})
	}
}
