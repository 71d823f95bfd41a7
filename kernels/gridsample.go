package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// GridSample: Y[n, c, p] samples X[n, c] at the normalized position grid[n, p]
// (innermost axis first), as the ONNX reference and torch.nn.functional.grid_sample do.
// Opset 16 takes 4-D input with modes bilinear/nearest/bicubic; opset 20 renames
// them linear/nearest/cubic and takes any number of spatial axes.
//
// Each output point becomes a list of taps (offset into the input plane, weight):
// the product of per-axis taps (1 for nearest, 2 for linear, 4 for cubic). Taps
// are built once per point and shared by all C channels, which is where the time
// goes for optical flow and deformable attention.

func init() {
	Register("", "GridSample", 16, newGridSample)
	Register("", "GridSample", 20, newGridSample)
}

const (
	gsNearest = iota
	gsLinear
	gsCubic
)

const (
	gsZeros = iota
	gsBorder
	gsReflection
)

type gridSampler struct {
	mode, pad int
	align     bool
	nd        bool // opset 20: any number of spatial axes
}

func newGridSample(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	modes, def := map[string]int{"bilinear": gsLinear, "nearest": gsNearest, "bicubic": gsCubic}, "bilinear"
	if ni.Opset >= 20 {
		modes, def = map[string]int{"linear": gsLinear, "nearest": gsNearest, "cubic": gsCubic}, "linear"
	}
	ms := a.String("mode", def)
	ps := a.String("padding_mode", "zeros")
	align := a.Int("align_corners", 0)
	if a.err != nil {
		return nil, a.err
	}
	mode, ok := modes[ms]
	if !ok {
		return nil, fmt.Errorf("GridSample mode %q is not one of opset %d's modes %q, %q, %q", ms, ni.Opset, def, "nearest", map[bool]string{true: "cubic", false: "bicubic"}[ni.Opset >= 20])
	}
	pad, ok := map[string]int{"zeros": gsZeros, "border": gsBorder, "reflection": gsReflection}[ps]
	if !ok {
		return nil, fmt.Errorf("GridSample padding_mode %q is not zeros, border or reflection", ps)
	}
	return &gridSampler{mode: mode, pad: pad, align: align != 0, nd: ni.Opset >= 20}, nil
}

func (g *gridSampler) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, grid := in[0], in[1]
	r := x.Rank() - 2
	switch {
	case !g.nd && x.Rank() != 4:
		return nil, fmt.Errorf("GridSample before opset 20 needs a 4-D input (N, C, H, W), got shape %v", x.Shape)
	case r < 1:
		return nil, fmt.Errorf("GridSample needs an input of rank 3 or more (N, C, spatial axes), got shape %v", x.Shape)
	case grid.Rank() != x.Rank() || grid.Shape[0] != x.Shape[0] || grid.Shape[r+1] != r:
		return nil, fmt.Errorf("GridSample grid shape %v does not fit input %v: want (%d, out axes..., %d)", grid.Shape, x.Shape, x.Shape[0], r)
	}
	shape := append([]int{x.Shape[0], x.Shape[1]}, grid.Shape[1:r+1]...)
	if graph.Numel(shape) == 0 {
		return one(ctx.New(x.DType, shape)), nil
	}
	if graph.Numel(x.Shape[2:]) == 0 {
		return nil, fmt.Errorf("GridSample input %v has an empty spatial axis to sample from", x.Shape)
	}
	switch grid.DType {
	case graph.Float, graph.Double, graph.Float16, graph.BFloat16:
	default:
		return nil, fmt.Errorf("GridSample grid must be a float tensor, got %s", grid.DType.Short())
	}
	switch x.DType {
	case graph.Float:
		gv, err := gridValues[float32](grid)
		if err != nil {
			return nil, err
		}
		out := ctx.Empty(graph.Float, shape)
		gridSample(ctx, g, x.Float32s(), gv, out.Float32s(), x.Shape, shape)
		return one(out), nil
	case graph.Double:
		gv, err := gridValues[float64](grid)
		if err != nil {
			return nil, err
		}
		out := ctx.Empty(graph.Double, shape)
		gridSample(ctx, g, graph.Elems[float64](x), gv, graph.Elems[float64](out), x.Shape, shape)
		return one(out), nil
	}
	// Other types (opset 20 allows integers): sample in float64, then convert
	// (truncating toward zero, as the reference's assignment into X's type does).
	xv, err := asFloat64s(x)
	if err != nil {
		return nil, fmt.Errorf("GridSample on %s input is not supported", x.DType.Short())
	}
	gv, err := gridValues[float64](grid)
	if err != nil {
		return nil, err
	}
	res := make([]float64, graph.Numel(shape))
	gridSample(ctx, g, xv, gv, res, x.Shape, shape)
	out := ctx.New(x.DType, shape)
	return one(out), storeFloat64s(out, res)
}

// gridValues reads the grid in the precision the samples are computed in.
func gridValues[E float32 | float64](t *graph.Tensor) ([]E, error) {
	if d, ok := t.Data().([]E); ok {
		return d, nil
	}
	v, err := asFloat64s(t)
	if err != nil {
		return nil, err
	}
	out := make([]E, len(v))
	for i, f := range v {
		out[i] = E(f)
	}
	return out, nil
}

// gridSample fills y (shape ys) from x (shape xs) at the grid's points, split
// over threads by output point; each chunk builds the taps of up to a block of
// points, then runs them over every channel.
func gridSample[E float32 | float64](ctx *Context, g *gridSampler, x, grid, y []E, xs, ys []int) {
	r := len(xs) - 2
	dims := xs[2:]
	st := stridesOf(dims)
	n, c := xs[0], xs[1]
	plane, pts := graph.Numel(dims), graph.Numel(ys[2:])
	k := [...]int{gsNearest: 1, gsLinear: 2, gsCubic: 4}[g.mode]
	taps := 1
	for range r {
		taps *= k
	}
	block := max(1, 1024/taps)
	bilinear := r == 2 && g.mode == gsLinear
	threads := threadsFor(ctx, n*pts*c*taps, 1<<15)
	parallelFor(threads, n*pts, func(lo, hi int) {
		off, wt := make([]int, block*taps), make([]E, block*taps)
		ai, aw := make([]int, r*k), make([]E, r*k)
		for p := lo; p < hi; {
			b := p / pts // batch
			end := min(hi, (b+1)*pts, p+block)
			for j := p; j < end; j++ {
				q := (j - p) * taps
				if bilinear {
					gsBilinear(g, grid[2*j], grid[2*j+1], dims[0], dims[1], off[q:q+4], wt[q:q+4])
				} else {
					gsPoint(g, grid[j*r:(j+1)*r], dims, st, off[q:q+taps], wt[q:q+taps], ai, aw)
				}
			}
			q0, m := p-b*pts, end-p
			for ch := 0; ch < c; ch++ {
				xp := x[(b*c+ch)*plane : (b*c+ch+1)*plane]
				yp := y[(b*c+ch)*pts+q0 : (b*c+ch)*pts+q0+m]
				gsGather(yp, xp, off[:m*taps], wt[:m*taps], taps)
			}
			p = end
		}
	})
}

// gsGather sums the taps of each point; a negative offset is a tap outside the
// input under zeros padding and reads 0 (not weight 0 times a pixel, which
// would turn an Inf pixel into NaN where the reference gives 0).
func gsGather[E float32 | float64](y, x []E, off []int, wt []E, taps int) {
	switch taps {
	case 1:
		for j, o := range off[:len(y)] {
			if o >= 0 {
				y[j] = x[o]
			} else {
				y[j] = 0
			}
		}
	case 4: // bilinear, the common case
		for j := range y {
			o := off[4*j : 4*j+4 : 4*j+4]
			w := wt[4*j : 4*j+4 : 4*j+4]
			if o[0]|o[1]|o[2]|o[3] >= 0 {
				y[j] = w[0]*x[o[0]] + w[1]*x[o[1]] + w[2]*x[o[2]] + w[3]*x[o[3]]
			} else {
				y[j] = gsSum(x, o, w)
			}
		}
	default:
		for j := range y {
			y[j] = gsSum(x, off[j*taps:(j+1)*taps], wt[j*taps:(j+1)*taps])
		}
	}
}

func gsSum[E float32 | float64](x []E, off []int, wt []E) E {
	var s E
	for t, o := range off {
		if o >= 0 {
			s += wt[t] * x[o]
		}
	}
	return s
}

// gsPoint builds the taps of one point: per-axis taps into ai, aw (k per axis),
// then their product into off, wt, expanded in place one axis at a time (entry
// e*k+j extends entry e by tap j of the next axis, written back to front so no
// entry is overwritten before it is read).
func gsPoint[E float32 | float64](g *gridSampler, pt []E, dims, st, off []int, wt []E, ai []int, aw []E) {
	r := len(dims)
	k := len(ai) / r
	for d := range r {
		// grid coordinates list the innermost axis first
		gsAxis(g, pt[r-1-d], dims[d], ai[d*k:(d+1)*k], aw[d*k:(d+1)*k])
	}
	off[0], wt[0] = 0, 1
	n := 1
	for d := range r {
		for e := n - 1; e >= 0; e-- {
			o, w := off[e], wt[e]
			for j := k - 1; j >= 0; j-- {
				i := ai[d*k+j]
				if o < 0 || i < 0 {
					off[e*k+j] = -1
				} else {
					off[e*k+j] = o + i*st[d]
				}
				wt[e*k+j] = w * aw[d*k+j]
			}
		}
		n *= k
	}
}

// gsAxis gives the taps of one grid coordinate along an axis of size pixels.
func gsAxis[E float32 | float64](g *gridSampler, v E, size int, idx []int, w []E) {
	i0, t := gsCoord(g, v, size)
	switch g.mode {
	case gsNearest:
		idx[0], w[0] = g.index(i0, size), 1
	case gsLinear:
		idx[0], idx[1] = g.index(i0, size), g.index(i0+1, size)
		w[0], w[1] = 1-t, t
	case gsCubic:
		for j := range 4 {
			idx[j] = g.index(i0-1+j, size)
		}
		// Keys' cubic convolution with A = -0.75 at distances t+1, t, 1-t, 2-t
		const A = -0.75
		s, u := t+1, 2-t
		w[0] = ((A*s-5*A)*s+8*A)*s - 4*A
		w[1] = ((A+2)*t-(A+3))*t*t + 1
		w[2] = ((A+2)*(1-t)-(A+3))*(1-t)*(1-t) + 1
		w[3] = ((A*u-5*A)*u+8*A)*u - 4*A
	}
}

// gsCoord unnormalizes a grid coordinate for an axis of size pixels, rounds
// it (nearest), and brings it back by the padding mode when it is outside:
// the pixel at or before it, and the fraction past that pixel.
func gsCoord[E float32 | float64](g *gridSampler, v E, size int) (int, E) {
	var x, lo, hi E
	if g.align { // -1 and 1 are the centers of the corner pixels
		x = (v + 1) / 2 * E(size-1)
		lo, hi = 0, E(size-1)
	} else { // -1 and 1 are the outer edges of the corner pixels
		x = ((v+1)*E(size) - 1) / 2
		lo, hi = -0.5, E(size)-0.5
	}
	if g.mode == gsNearest {
		x = E(math.RoundToEven(float64(x))) // the spec: halfway rounds to the even index
	}
	if x < lo || x > hi {
		switch g.pad {
		case gsBorder:
			if g.mode == gsCubic {
				// Cubic pads its four taps only (index below), as ONNX
				// Runtime and PyTorch do: clamping the coordinate first
				// moves the taps inward (measured against ONNX Runtime).
				break
			}
			x = min(max(x, 0), E(size-1))
		case gsReflection:
			x = E(gsReflect(float64(x), float64(lo), float64(hi)))
		}
	}
	fl := math.Floor(float64(x))
	return gsInt(fl), x - E(fl)
}

// gsBilinear is gsPoint for linear mode on an image, the hot case: the four
// taps (y0, x0), (y0, x1), (y1, x0), (y1, x1) of the point (gx, gy).
func gsBilinear[E float32 | float64](g *gridSampler, gx, gy E, h, w int, off []int, wt []E) {
	y0, ty := gsCoord(g, gy, h)
	x0, tx := gsCoord(g, gx, w)
	y1, x1 := y0+1, x0+1
	if y0 < 0 || y1 >= h {
		y0, y1 = g.index(y0, h), g.index(y1, h)
	}
	if x0 < 0 || x1 >= w {
		x0, x1 = g.index(x0, w), g.index(x1, w)
	}
	off[0], off[1], off[2], off[3] = gsOffset(y0, x0, w), gsOffset(y0, x1, w), gsOffset(y1, x0, w), gsOffset(y1, x1, w)
	wt[0], wt[1], wt[2], wt[3] = (1-ty)*(1-tx), (1-ty)*tx, ty*(1-tx), ty*tx
}

func gsOffset(i, j, w int) int {
	if i < 0 || j < 0 {
		return -1
	}
	return i*w + j
}

// gsReflect folds x into [lo, hi] by mirroring at both ends until it lands
// inside: x = -3.5 in [-1, 1] mirrors at -1 to 1.5, then at 1 to 0.5.
func gsReflect(x, lo, hi float64) float64 {
	span := hi - lo
	if !(span > 0) { // a single pixel with align_corners
		return lo
	}
	if x < lo {
		d := math.Mod(lo-x, 2*span)
		if d < span {
			return lo + d
		}
		return hi - (d - span)
	}
	d := math.Mod(x-hi, 2*span)
	if d < span {
		return hi - d
	}
	return lo + (d - span)
}

// gsInt converts a whole float to an index, saturating far outside any axis
// (and NaN) so that the neighbors' arithmetic cannot overflow.
func gsInt(f float64) int {
	const far = 1 << 40
	switch {
	case f >= -far && f <= far:
		return int(f)
	case f > far:
		return far
	}
	return -far
}

// index pads a tap's index: -1 (reads 0) for zeros, the nearest edge pixel for
// border, the mirrored pixel for reflection (about the corner pixels' centers
// with align_corners, about their outer edges without, as the float reflection).
func (g *gridSampler) index(i, size int) int {
	if i >= 0 && i < size {
		return i
	}
	switch g.pad {
	case gsBorder:
		return min(max(i, 0), size-1)
	case gsReflection:
		if g.align {
			if size == 1 {
				return 0
			}
			p := 2 * (size - 1)
			m := (i%p + p) % p
			if m >= size {
				m = p - m
			}
			return m
		}
		p := 2 * size
		m := (i%p + p) % p
		if m >= size {
			m = p - 1 - m
		}
		return m
	}
	return -1
}
