package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
)

// Convolutions with three or more spatial axes (video, volumetric medical
// images): one generic im2col + GEMM form for Conv and col2im form for
// ConvTranspose over any number of axes. The 1-D and 2-D layers keep their
// specialised paths (conv.go); these are written for correctness first and
// stream the column matrix in strips of the first output axis, so memory
// stays bounded on large volumes.

// ndParams are a convolution's attributes on any number of axes.
type ndParams struct {
	spatial                   int
	kernel                    []int // nil when the attribute is absent (taken from the weights)
	strides, dils, padB, padE []int
	outPad                    []int
	outShape                  []int64
	group                     int
	autoPad                   string
}

// convSpatialRank is the number of spatial axes the node's constant weights
// or attributes give, 0 when neither says.
func convSpatialRank(ni *NodeInfo) int {
	if w := ni.Const(1); w != nil && w.Rank() >= 3 {
		return w.Rank() - 2
	}
	a := attrsOf(ni.Node)
	n := max(len(a.Ints("kernel_shape", nil)), len(a.Ints("strides", nil)), len(a.Ints("dilations", nil)), len(a.Ints("pads", nil))/2)
	if a.err != nil {
		return 0
	}
	return n
}

func readNDParams(ni *NodeInfo, spatial int) (*ndParams, error) {
	a := attrsOf(ni.Node)
	p := &ndParams{spatial: spatial, autoPad: a.String("auto_pad", "NOTSET"), group: int(a.Int("group", 1)), outShape: a.Ints("output_shape", nil)}
	list := func(name string, n int, def int) []int {
		v := a.Ints(name, nil)
		if v == nil {
			out := make([]int, n)
			for i := range out {
				out[i] = def
			}
			return out
		}
		if len(v) != n && a.err == nil {
			a.err = fmt.Errorf("%s has %d values for a %d-D convolution", name, len(v), spatial)
		}
		return toInts(v)
	}
	if a.Ints("kernel_shape", nil) != nil {
		p.kernel = list("kernel_shape", spatial, 1)
	}
	p.strides, p.dils = list("strides", spatial, 1), list("dilations", spatial, 1)
	p.outPad = list("output_padding", spatial, 0)
	pads := list("pads", 2*spatial, 0)
	if a.err != nil {
		return nil, a.err
	}
	p.padB, p.padE = pads[:spatial], pads[spatial:]
	if p.outShape != nil && len(p.outShape) != spatial {
		return nil, fmt.Errorf("output_shape has %d values for a %d-D convolution", len(p.outShape), spatial)
	}
	if p.group < 1 {
		return nil, fmt.Errorf("group %d must be positive", p.group)
	}
	for i := 0; i < spatial; i++ {
		if p.strides[i] < 1 || p.dils[i] < 1 {
			return nil, fmt.Errorf("strides and dilations must be positive")
		}
		if p.padB[i] < 0 || p.padE[i] < 0 {
			return nil, fmt.Errorf("pads must not be negative")
		}
	}
	switch p.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", p.autoPad)
	}
	return p, nil
}

// ndGeom is one convolution's shape on its spatial axes: for Conv, in is the
// input and out the output; for ConvTranspose, the roles swap (the column
// grid is the input, the image the output), so both use im2col's indexing.
type ndGeom struct {
	img, grid, k, s, d, pb []int
}

// taps is the number of kernel positions.
func (g *ndGeom) taps() int { return graph.Numel(g.k) }

// forRows calls f for every row (run of the last grid axis) of grid rows
// [r0, r1) of the first axis, in order, for kernel position kt: i is the
// row's first column index, and grid position o of the row reads image
// offset off + o*s (s the last axis' stride) for o in [lo, hi), padding
// elsewhere (all of it when lo >= hi). The one loop nest im2col and col2im
// share.
func (g *ndGeom) forRows(kt []int, r0, r1 int, f func(i, off, lo, hi int)) {
	last := len(g.grid) - 1
	imgStride := stridesOf(g.img)
	lo, hi := validRange(g.grid[last], g.img[last], g.s[last], kt[last]*g.d[last], g.pb[last])
	shift := kt[last]*g.d[last] - g.pb[last]
	i := 0
	var walk func(axis, off int, inside bool)
	walk = func(axis, off int, inside bool) {
		if axis == last {
			if inside {
				f(i, off+shift, lo, hi)
			} else {
				f(i, 0, 0, 0)
			}
			i += g.grid[last]
			return
		}
		a, b := 0, g.grid[axis]
		if axis == 0 {
			a, b = r0, r1
		}
		for o := a; o < b; o++ {
			c := o*g.s[axis] - g.pb[axis] + kt[axis]*g.d[axis]
			walk(axis+1, off+c*imgStride[axis], inside && c >= 0 && c < g.img[axis])
		}
	}
	walk(0, 0, true)
}

// tapOf writes kernel position t's coordinates into kt.
func (g *ndGeom) tapOf(t int, kt []int) {
	for a := len(g.k) - 1; a >= 0; a-- {
		kt[a] = t % g.k[a]
		t /= g.k[a]
	}
}

// ndAtRunTime compiles the N-D form for an input of 3+ spatial axes whose
// rank compile time could not see (weights and attributes both silent), or
// returns nil.
func ndAtRunTime(ni *NodeInfo, in []*graph.Tensor, transpose bool) (Kernel, error) {
	if len(in) == 0 || in[0] == nil || in[0].Rank() < 5 {
		return nil, nil
	}
	return newConvND(ni, in[0].Rank()-2, transpose)
}

func runOr(ctx *Context, k Kernel, in []*graph.Tensor, err error) ([]*graph.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return k.Run(ctx, in)
}

type convNDKernel struct {
	p         *ndParams
	transpose bool
	packed    []*gemm.PackedA // per group, Conv with constant weights
	ndGridState
}

func newConvND(ni *NodeInfo, spatial int, transpose bool) (Kernel, error) {
	p, err := readNDParams(ni, spatial)
	if err != nil {
		return nil, err
	}
	k := &convNDKernel{p: p, transpose: transpose}
	if w := ni.Const(1); w != nil && !transpose {
		if err := wantFloat(w, "Conv weights"); err != nil {
			return nil, err
		}
		if w.Rank() != spatial+2 || w.Shape[0]%p.group != 0 {
			return nil, fmt.Errorf("weights %v do not fit a %d-D convolution in %d groups", w.Shape, spatial, p.group)
		}
		mg, kk := w.Shape[0]/p.group, graph.Numel(w.Shape[1:])
		for g := 0; g < p.group; g++ {
			k.packed = append(k.packed, ni.packs.packA(mg, kk, w.Float32s()[g*mg*kk:]))
		}
		wd, packs := w.Float32s(), ni.packs
		k.narrowW = func(mg, g int) *gemm.PackedA { return packs.packANarrow(mg, kk, wd[g*mg*kk:]) }
	}
	return k, nil
}

func (k *convNDKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	op := "Conv"
	if k.transpose {
		op = "ConvTranspose"
	}
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	if err := wantFloat(x, op+" input"); err != nil {
		return nil, err
	}
	if err := wantFloat(w, op+" weights"); err != nil {
		return nil, err
	}
	p := k.p
	if x.Rank() != p.spatial+2 || w.Rank() != p.spatial+2 {
		return nil, fmt.Errorf("input %v and weights %v do not fit a %d-D convolution", x.Shape, w.Shape, p.spatial)
	}
	kern := w.Shape[2:]
	if p.kernel != nil && !slices.Equal(p.kernel, kern) {
		return nil, fmt.Errorf("kernel_shape %v differs from the weights' %v", p.kernel, kern)
	}
	var bias []float32
	if len(in) > 2 && in[2] != nil {
		if err := wantFloat(in[2], op+" bias"); err != nil {
			return nil, err
		}
		bias = in[2].Float32s()
	}
	if k.transpose {
		return k.runTranspose(ctx, x, w, bias)
	}
	n, c, g := x.Shape[0], x.Shape[1], p.group
	m := w.Shape[0]
	if c%g != 0 || m%g != 0 || w.Shape[1] != c/g {
		return nil, fmt.Errorf("input has %d channels, weights %v (groups %d)", c, w.Shape, g)
	}
	if bias != nil && len(bias) != m {
		return nil, fmt.Errorf("bias has %d values, want %d", len(bias), m)
	}
	geo := ndGeom{img: x.Shape[2:], k: kern, s: p.strides, d: p.dils, pb: make([]int, p.spatial)}
	out := []int{n, m}
	for i := 0; i < p.spatial; i++ {
		o, pb, _ := convOut(geo.img[i], kern[i], p.strides[i], p.dils[i], p.padB[i], p.padE[i], p.autoPad)
		if o <= 0 {
			return nil, fmt.Errorf("output size %d on axis %d is not positive", o, i)
		}
		out = append(out, o)
		geo.pb[i] = pb
	}
	geo.grid = out[2:]
	y := ctx.Float32(out)
	if k.packed != nil && !forceNDIm2col {
		if l := k.ndGridLayout(x.Shape, c/g, m/g, kern, geo.pb, geo.grid); l.offs != nil {
			k.runGrid(ctx, l, n, c, g, m, x.Float32s(), bias, y.Float32s())
			return one(y), nil
		}
	}
	cg, mg := c/g, m/g
	kk := cg * geo.taps()
	inPlane, outPlane := graph.Numel(geo.img), graph.Numel(geo.grid)
	rest := outPlane / geo.grid[0]
	rows := max(1, min(geo.grid[0], (1<<22)/max(1, kk*rest))) // columns of at most ~16 MiB
	col := ctx.Scratch(kk * rows * rest)
	defer ctx.Release(col)
	xd, wd, yd := x.Float32s(), w.Float32s(), y.Float32s()
	for b := 0; b < n; b++ {
		for gi := 0; gi < g; gi++ {
			xg := xd[(b*c+gi*cg)*inPlane:]
			for r0 := 0; r0 < geo.grid[0]; r0 += rows {
				r1 := min(geo.grid[0], r0+rows)
				cols := (r1 - r0) * rest
				parallelFor(threadsFor(ctx, kk*cols, 1<<15), kk, func(lo, hi int) {
					kt := make([]int, p.spatial)
					for r := lo; r < hi; r++ {
						ci, t := r/geo.taps(), r%geo.taps()
						geo.tapOf(t, kt)
						src, dst := xg[ci*inPlane:], col[r*cols:(r+1)*cols]
						sl := p.strides[p.spatial-1]
						geo.forRows(kt, r0, r1, func(i, off, lo, hi int) {
							row := dst[i : i+geo.grid[p.spatial-1]]
							if lo >= hi {
								clear(row)
								return
							}
							clear(row[:lo])
							clear(row[hi:])
							for o := lo; o < hi; o++ {
								row[o] = src[off+o*sl]
							}
						})
					}
				})
				dst := yd[(b*m+gi*mg)*outPlane+r0*rest:]
				bm := gemm.Matrix{Data: col, Stride: cols}
				var bg []float32
				if bias != nil {
					bg = bias[gi*mg : (gi+1)*mg]
				}
				switch {
				case k.packed != nil && bg != nil:
					gemm.MulPackedABias(k.packed[gi], cols, bm, bg, dst, outPlane, ctx.Threads)
				case k.packed != nil:
					gemm.MulPackedA(k.packed[gi], cols, bm, 0, dst, outPlane, ctx.Threads)
				default:
					beta := float32(0)
					if bg != nil {
						for i := 0; i < mg; i++ {
							fillSlice(dst[i*outPlane:i*outPlane+cols], bg[i])
						}
						beta = 1
					}
					gemm.Sgemm(mg, cols, kk, 1, gemm.Matrix{Data: wd[gi*mg*kk:], Stride: kk}, bm, beta, dst, outPlane, ctx.Threads)
				}
			}
		}
	}
	return one(y), nil
}

// runTranspose computes ConvTranspose: per image and group, the columns
// W_g^T X_g, scatter-added (col2im) into the output planes that start from
// the bias.
func (k *convNDKernel) runTranspose(ctx *Context, x, w *graph.Tensor, bias []float32) ([]*graph.Tensor, error) {
	p := k.p
	n, c, g := x.Shape[0], x.Shape[1], p.group
	if c%g != 0 || w.Shape[0] != c {
		return nil, fmt.Errorf("input has %d channels, weights %v (groups %d)", c, w.Shape, g)
	}
	cg, mg := c/g, w.Shape[1]
	m := mg * g
	if bias != nil && len(bias) != m {
		return nil, fmt.Errorf("bias has %d values, want %d", len(bias), m)
	}
	kern := w.Shape[2:]
	geo := ndGeom{grid: x.Shape[2:], k: kern, s: p.strides, d: p.dils, pb: make([]int, p.spatial)}
	out := []int{n, m}
	for i := 0; i < p.spatial; i++ {
		in, s, d := geo.grid[i], p.strides[i], p.dils[i]
		full := s*(in-1) + p.outPad[i] + (kern[i]-1)*d + 1
		target, has := int64(0), p.outShape != nil
		if has {
			target = p.outShape[i]
		} else if p.autoPad == "SAME_UPPER" || p.autoPad == "SAME_LOWER" {
			target, has = int64(in*s), true
		}
		o, pb := full-p.padB[i]-p.padE[i], p.padB[i]
		if has {
			// The spec's split of the total padding (floor division: a
			// larger output_shape pads only the end).
			total := full - int(target)
			half := floorDiv(total, 2)
			o, pb = int(target), total-half
			if p.autoPad == "SAME_UPPER" {
				pb = half
			}
		}
		if o <= 0 {
			return nil, fmt.Errorf("output size %d on axis %d is not positive", o, i)
		}
		out = append(out, o)
		geo.pb[i] = pb
	}
	geo.img = out[2:]
	y := ctx.Float32(out)
	taps := geo.taps()
	kk := mg * taps
	inPlane, outPlane := graph.Numel(geo.grid), graph.Numel(geo.img)
	col := ctx.Scratch(kk * inPlane)
	defer ctx.Release(col)
	xd, wd, yd := x.Float32s(), w.Float32s(), y.Float32s()
	for b := 0; b < n; b++ {
		for gi := 0; gi < g; gi++ {
			gemm.Sgemm(kk, inPlane, cg, 1, gemm.Matrix{Data: wd[gi*cg*kk:], Stride: kk, Trans: true},
				gemm.Matrix{Data: xd[(b*c+gi*cg)*inPlane:], Stride: inPlane}, 0, col, inPlane, ctx.Threads)
			og := yd[(b*m+gi*mg)*outPlane:]
			// Threads take whole output channels: their taps add into one plane.
			parallelFor(threadsFor(ctx, kk*inPlane, 1<<15), mg, func(c0, c1 int) {
				kt := make([]int, p.spatial)
				for co := c0; co < c1; co++ {
					v := float32(0)
					if bias != nil {
						v = bias[gi*mg+co]
					}
					plane := og[co*outPlane : (co+1)*outPlane]
					fillSlice(plane, v)
					for t := 0; t < taps; t++ {
						geo.tapOf(t, kt)
						src := col[(co*taps+t)*inPlane:]
						sl := p.strides[p.spatial-1]
						geo.forRows(kt, 0, geo.grid[0], func(i, off, lo, hi int) {
							for o := lo; o < hi; o++ {
								plane[off+o*sl] += src[i+o]
							}
						})
					}
				}
			})
		}
	}
	return one(y), nil
}
