package kernels

import (
	"fmt"
	"math"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
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
	threads := threadsFor(ctx, n*pts*c*taps, 1<<15)
	if r == 2 && g.mode == gsLinear && dims[0] > 1 && dims[1] > 1 {
		parallelFor(threads, n*pts, func(lo, hi int) {
			z := getGSBlock[E]()
			for p := lo; p < hi; {
				b := p / pts // batch
				end := min(hi, (b+1)*pts, p+gsBlockPoints)
				z.build(g, grid[2*p:2*end], dims[0], dims[1])
				q0, m := p-b*pts, end-p
				for ch := 0; ch < c; ch++ {
					z.gather(y[(b*c+ch)*pts+q0:(b*c+ch)*pts+q0+m], x[(b*c+ch)*plane:(b*c+ch+1)*plane])
				}
				p = end
			}
			putGSBlock(z)
		})
		return
	}
	parallelFor(threads, n*pts, func(lo, hi int) {
		off, wt := make([]int, block*taps), make([]E, block*taps)
		ai, aw := make([]int, r*k), make([]E, r*k)
		for p := lo; p < hi; {
			b := p / pts // batch
			end := min(hi, (b+1)*pts, p+block)
			for j := p; j < end; j++ {
				q := (j - p) * taps
				gsPoint(g, grid[j*r:(j+1)*r], dims, st, off[q:q+taps], wt[q:q+taps], ai, aw)
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

// gsBlock holds the bilinear taps of a block of points on an image, for
// every channel. A point whose four taps are the square (i, j), (i, j+1),
// (i+1, j), (i+1, j+1) inside the image, which most are, keeps the offset of
// (i, j) and the four weights, and a float32 block's squares are gathered
// eight points at a time (vec.Quads). The other points, at or past an edge,
// are summed again after them from their four taps; a tap outside under
// zeros padding reads pixel 0 at weight 0 there, which gives gsSum's sum (the
// outside taps left out) unless that is zero (the sign of a zero may differ)
// or not finite (0 times an Inf pixel), and those few are summed by gsSum's
// loop. The sums are the same expressions in the same order as gsGather's,
// so the results are the same to the bit.
type gsBlock[E float32 | float64] struct {
	base  []int32 // a point: the offset of its first tap, 0 at an edge point
	w     [4][]E  // the points' weights, tap by tap
	quads vec.Quads
	isF32 bool       // quads holds the block (float32)
	edge  []int32    // the points at an edge
	edgeO [][4]int32 // their taps, 0 for a tap outside
	edgeW [][4]E     // and weights, 0 for a tap outside
	out   []uint8    // a bit a tap outside
	row   int        // the image width: the offset from a tap to the one below
	o4    [4]int
	w4    [4]E
}

// gsBlockPoints is how many points a block holds: about 80 kB of taps in
// float32, read once a channel while that channel's plane stays in cache.
const gsBlockPoints = 4096

var gsBlocks32, gsBlocks64 sync.Pool

func getGSBlock[E float32 | float64]() *gsBlock[E] {
	p := &gsBlocks32
	if _, ok := any(E(0)).(float64); ok {
		p = &gsBlocks64
	}
	if z, ok := p.Get().(*gsBlock[E]); ok {
		return z
	}
	return new(gsBlock[E])
}

func putGSBlock[E float32 | float64](z *gsBlock[E]) {
	if _, ok := any(E(0)).(float64); ok {
		gsBlocks64.Put(z)
	} else {
		gsBlocks32.Put(z)
	}
}

// build computes the taps of the points at grid (x, y pairs) on an h x w
// image, h and w 2 or more.
func (z *gsBlock[E]) build(g *gridSampler, grid []E, h, w int) {
	m := len(grid) / 2
	if cap(z.base) < m {
		z.base = make([]int32, m)
		for t := range z.w {
			z.w[t] = make([]E, m)
		}
	}
	z.base = z.base[:m]
	for t := range z.w {
		z.w[t] = z.w[t][:m]
	}
	w0, w1, w2, w3 := z.w[0], z.w[1], z.w[2], z.w[3]
	z.edge, z.edgeO, z.edgeW, z.out = z.edge[:0], z.edgeO[:0], z.edgeW[:0], z.out[:0]
	z.row = w
	o, wt := z.o4[:], z.w4[:]
	hi, wi := E(h-1), E(w-1)
	for j := range z.base {
		// A point inside the square of the corner pixels' centers on both
		// axes needs no padding and has all four taps: its pixel is the
		// coordinate's floor (its integer part, as it is not negative), as
		// gsCoord and gsBilinear find it.
		fx, fy := gsUnnorm(g.align, grid[2*j], w), gsUnnorm(g.align, grid[2*j+1], h)
		if fx >= 0 && fx < wi && fy >= 0 && fy < hi {
			x0, y0 := int(fx), int(fy)
			tx, ty := fx-E(x0), fy-E(y0)
			z.base[j] = int32(y0*w + x0)
			w0[j], w1[j], w2[j], w3[j] = (1-ty)*(1-tx), (1-ty)*tx, ty*(1-tx), ty*tx
			continue
		}
		gsBilinear(g, grid[2*j], grid[2*j+1], h, w, o, wt)
		w0[j], w1[j], w2[j], w3[j] = wt[0], wt[1], wt[2], wt[3]
		// The square's taps: o[1] = o[0]+1 puts its right column inside
		// the image (a tap past the edge is -1 or padded onto the image).
		if o[0] >= 0 && o[1] == o[0]+1 && o[2] == o[0]+w && o[3] == o[0]+w+1 {
			z.base[j] = int32(o[0])
			continue
		}
		z.base[j] = 0
		z.edge = append(z.edge, int32(j))
		var out uint8
		for t := range 4 {
			if o[t] < 0 {
				o[t], wt[t], out = 0, 0, out|1<<t
			}
		}
		z.edgeO = append(z.edgeO, [4]int32{int32(o[0]), int32(o[1]), int32(o[2]), int32(o[3])})
		z.edgeW = append(z.edgeW, [4]E(wt))
		z.out = append(z.out, out)
	}
	if w, ok := any(z.w).([4][]float32); ok {
		if err := z.quads.Set(z.base, w, z.row); err != nil {
			panic("GridSample: " + err.Error()) // the offsets above are inside the image
		}
		z.isF32 = true
	}
}

// gather samples one channel's plane x at the block's points into y.
func (z *gsBlock[E]) gather(y, x []E) {
	if z.isF32 {
		z.quads.Sample(any(y).([]float32), any(x).([]float32))
	} else {
		w := z.row
		w0, w1, w2, w3 := z.w[0], z.w[1], z.w[2], z.w[3]
		y = y[:len(z.base)]
		for j, o := range z.base {
			a := x[o : int(o)+w+2]
			y[j] = w0[j]*a[0] + w1[j]*a[1] + w2[j]*a[w] + w3[j]*a[w+1]
		}
	}
	out, taps, wts := z.out[:len(z.edge)], z.edgeO[:len(z.edge)], z.edgeW[:len(z.edge)]
	for i, j := range z.edge {
		if out[i] == 15 { // all four outside: gsSum adds nothing
			y[j] = 0
			continue
		}
		o, k := &taps[i], &wts[i]
		v := k[0]*x[o[0]] + k[1]*x[o[1]] + k[2]*x[o[2]] + k[3]*x[o[3]]
		if out[i] != 0 && (v == 0 || v-v != 0) {
			v = 0
			for t := range 4 {
				if out[i]&(1<<t) == 0 {
					v += k[t] * x[o[t]]
				}
			}
		}
		y[j] = v
	}
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

// gsUnnorm places a grid coordinate on an axis of size pixels: with
// align_corners -1 and 1 are the centers of the corner pixels, without it
// their outer edges.
func gsUnnorm[E float32 | float64](align bool, v E, size int) E {
	if align {
		return (v + 1) / 2 * E(size-1)
	}
	return ((v+1)*E(size) - 1) / 2
}

// gsCoord unnormalizes a grid coordinate for an axis of size pixels, rounds
// it (nearest), and brings it back by the padding mode when it is outside:
// the pixel at or before it, and the fraction past that pixel.
func gsCoord[E float32 | float64](g *gridSampler, v E, size int) (int, E) {
	x, lo, hi := gsUnnorm(g.align, v, size), E(-0.5), E(size)-0.5
	if g.align {
		lo, hi = 0, E(size-1)
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
