package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// MaxPool and AveragePool over three or more spatial axes (video and volume
// models): with vector passes of the same bits (poolnd_fast.go), or, for
// MaxPool's indices, one window at a time as the ONNX specification reads
// (poolNDPlane, also the tests' reference); 1-D and 2-D pools take the
// vectorized path in pool.go. The rules per axis are the same:
// explicit or automatic padding, strides, dilations, ceil mode (a window must
// start inside the input or its leading padding) and count_include_pad, which
// counts explicit padding but not the positions ceil mode adds past it.

// poolNDAxis is one spatial axis of an N-D pooling call.
type poolNDAxis struct {
	in, out, k, s, d int
	pad              int // leading padding in effect
	padBegin         int // explicit leading padding (for count_include_pad)
	end              int // where padding ends past the input; beyond it nothing counts
}

type poolNDParams struct {
	kernel, strides, dilations, pads []int
	autoPad                          string
	ceil, countIncludePad            bool
	columnMajor                      bool
}

func readPoolNDParams(ni *NodeInfo) (*poolNDParams, error) {
	a := attrsOf(ni.Node)
	p := &poolNDParams{kernel: toInts(a.Ints("kernel_shape", nil)), autoPad: a.String("auto_pad", "NOTSET"),
		ceil: a.Int("ceil_mode", 0) != 0, countIncludePad: a.Int("count_include_pad", 0) != 0,
		columnMajor: a.Int("storage_order", 0) != 0}
	st, dl, pads := a.Ints("strides", nil), a.Ints("dilations", nil), a.Ints("pads", nil)
	if a.err != nil {
		return nil, a.err
	}
	n := len(p.kernel)
	fill := func(v []int64, size, def int, name string) ([]int, error) {
		if v == nil {
			out := make([]int, size)
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != size {
			return nil, fmt.Errorf("%s %v does not fit kernel_shape %v", name, v, p.kernel)
		}
		return toInts(v), nil
	}
	var err error
	if p.strides, err = fill(st, n, 1, "strides"); err != nil {
		return nil, err
	}
	if p.dilations, err = fill(dl, n, 1, "dilations"); err != nil {
		return nil, err
	}
	if p.pads, err = fill(pads, 2*n, 0, "pads"); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if p.kernel[i] < 1 || p.strides[i] < 1 || p.dilations[i] < 1 {
			return nil, fmt.Errorf("kernel_shape %v, strides %v and dilations %v must be positive", p.kernel, p.strides, p.dilations)
		}
		if p.pads[i] < 0 || p.pads[n+i] < 0 {
			return nil, fmt.Errorf("pads %v must not be negative", p.pads)
		}
	}
	switch p.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", p.autoPad)
	}
	return p, nil
}

// axes places the windows on an input of these spatial sizes.
func (p *poolNDParams) axes(spatial []int) ([]poolNDAxis, error) {
	ax := make([]poolNDAxis, len(spatial))
	n := len(p.kernel)
	for i, in := range spatial {
		a := poolNDAxis{in: in, k: p.kernel[i], s: p.strides[i], d: p.dilations[i], padBegin: p.pads[i]}
		a.out, a.pad = poolOut(in, a.k, a.s, a.d, p.pads[i], p.pads[n+i], p.autoPad, p.ceil)
		if a.out <= 0 {
			return nil, fmt.Errorf("input %v is too small for the pooling window %v", spatial, p.kernel)
		}
		a.end = in + p.pads[n+i]
		if p.autoPad != "NOTSET" {
			// Automatic padding counts like explicit padding of what it adds.
			a.padBegin = a.pad
			a.end = max(in, (a.out-1)*a.s+a.d*(a.k-1)+1-a.pad)
		}
		ax[i] = a
	}
	return ax, nil
}

func newPoolND(kind string, ni *NodeInfo) (Kernel, error) {
	p, err := readPoolNDParams(ni)
	if err != nil {
		return nil, err
	}
	if kind == "avg" && ni.Opset < 19 {
		for _, d := range p.dilations {
			if d != 1 {
				return nil, fmt.Errorf("AveragePool dilations need opset 19")
			}
		}
	}
	wantIndices := len(ni.Node.Outputs) > 1 && ni.Node.Outputs[1] != nil
	ones := make([]float32, graph.Numel(p.kernel)) // AveragePool's tap weights
	fillSlice(ones, 1)
	divs := new(ndDivCache)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "pool input"); err != nil {
			return nil, err
		}
		if x.Rank() != len(p.kernel)+2 {
			return nil, fmt.Errorf("input rank %d does not fit a %d-D pool (kernel_shape %v)", x.Rank(), len(p.kernel), p.kernel)
		}
		ax, err := p.axes(x.Shape[2:])
		if err != nil {
			return nil, err
		}
		shape := []int{x.Shape[0], x.Shape[1]}
		for _, a := range ax {
			shape = append(shape, a.out)
		}
		out := ctx.Float32(shape)
		var indices []int64
		var idxT *graph.Tensor
		if kind == "max" && wantIndices {
			idxT = ctx.Empty(graph.Int64, shape)
			indices = idxT.Int64s()
		}
		planes := x.Shape[0] * x.Shape[1]
		inPlane, outPlane := graph.Numel(x.Shape[2:]), graph.Numel(shape[2:])
		window := graph.Numel(p.kernel)
		xd, od := x.Float32s(), out.Float32s()
		threads := threadsFor(ctx, planes*outPlane*window, 1<<14)
		switch {
		case indices != nil || noFastPoolND:
			parallelFor(threads, planes, func(lo, hi int) {
				for nc := lo; nc < hi; nc++ {
					poolNDPlane(ax, p, kind, xd[nc*inPlane:(nc+1)*inPlane], od[nc*outPlane:(nc+1)*outPlane], indices, nc, inPlane, outPlane)
				}
			})
		case kind == "max":
			g := newPoolNDGeom(ax)
			parallelFor(threads, planes, func(lo, hi int) { maxND(ctx, g, xd, od, lo, hi) })
		default:
			g := newPoolNDGeom(ax)
			div := divs.divisors(ax, p.countIncludePad)
			parallelFor(threads, planes, func(lo, hi int) { avgND(ctx, g, ones, div, xd, od, lo, hi) })
		}
		if idxT != nil {
			return []*graph.Tensor{out, idxT}, nil
		}
		return one(out), nil
	}), nil
}

// noFastPoolND keeps N-D pools on poolNDPlane, for the tests that compare.
var noFastPoolND = false

// poolNDPlane pools one N x C plane; indices (MaxPool's second output) gets
// the flat index of each maximum in the whole input.
func poolNDPlane(ax []poolNDAxis, p *poolNDParams, kind string, src, dst []float32, indices []int64, nc, inPlane, outPlane int) {
	n := len(ax)
	inStride := make([]int, n) // row-major element strides of the input
	s := 1
	for i := n - 1; i >= 0; i-- {
		inStride[i] = s
		s *= ax[i].in
	}
	colStride := make([]int, n) // column-major, for storage_order 1
	s = 1
	for i := 0; i < n; i++ {
		colStride[i] = s
		s *= ax[i].in
	}
	o := make([]int, n)   // output position
	k := make([]int, n)   // kernel position
	pos := make([]int, n) // input position of the current tap
	for oi := 0; oi < outPlane; oi++ {
		best := float32(math.Inf(-1))
		bestAt := -1
		var sum float32
		cnt, padCnt := 0, 0
		clear(k)
		for {
			inside, counted := true, true
			at := 0
			for i, a := range ax {
				pos[i] = o[i]*a.s - a.pad + k[i]*a.d
				if pos[i] < 0 || pos[i] >= a.in {
					inside = false
					if pos[i] < -a.padBegin || pos[i] >= a.end {
						counted = false
					}
				}
				at += pos[i] * inStride[i]
			}
			if inside {
				v := src[at]
				if v > best || v != v || bestAt < 0 {
					best, bestAt = v, at
					if p.columnMajor {
						bestAt = 0
						for i := range pos {
							bestAt += pos[i] * colStride[i]
						}
					}
				}
				sum += v
				cnt++
			} else if counted {
				padCnt++
			}
			// Next kernel position, the last axis fastest.
			i := n - 1
			for ; i >= 0; i-- {
				k[i]++
				if k[i] < ax[i].k {
					break
				}
				k[i] = 0
			}
			if i < 0 {
				break
			}
		}
		if kind == "max" {
			dst[oi] = best
			if indices != nil {
				indices[nc*outPlane+oi] = int64(nc*inPlane + bestAt)
			}
		} else {
			div := cnt
			if p.countIncludePad {
				div += padCnt
			}
			dst[oi] = 0
			if div > 0 {
				dst[oi] = sum / float32(div)
			}
		}
		for i := n - 1; i >= 0; i-- {
			o[i]++
			if o[i] < ax[i].out {
				break
			}
			o[i] = 0
		}
	}
}
