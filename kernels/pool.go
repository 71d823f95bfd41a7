package kernels

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// poolParams are MaxPool/AveragePool attributes in 2-D form (1-D pools get unit height).
type poolParams struct {
	kh, kw, sh, sw, dh, dw int
	padT, padL, padB, padR int
	autoPad                string
	ceil                   bool
	countIncludePad        bool
	spatial                int
	columnMajor            bool // storage_order 1: MaxPool indices in column-major order
	divs                   *divCache
}

// divCache keeps an AveragePool's divisors for the last input size: counting
// each output's window (avgDivisors) was a tenth of a 3x3 average pool's
// time on 1x64x56x56, every call.
type divCache struct{ last atomic.Pointer[poolDivs] }

type poolDivs struct {
	h, w int
	div  []float32 // read-only once stored: runs on several threads share it
	// side holds div tiled for poolSide's planes side by side, made on
	// first use.
	side atomic.Pointer[sideDivs]
}

// sideDivs is div for up to per planes side by side: oh rows of per
// planes' wp columns, each plane's ow divisors followed by 1s for the
// columns between planes.
type sideDivs struct {
	per int
	div []float32
}

// divisors is what each average of g divides by (avgDivisors), from the
// cache when the last call had the same input size.
func (p *poolParams) divisors(g *poolGeom) []float32 {
	if p.divs != nil {
		if d := p.divs.last.Load(); d != nil && d.h == g.h && d.w == g.w {
			return d.div
		}
	}
	div := make([]float32, g.oh*g.ow)
	avgDivisors(g, div)
	if p.divs != nil {
		p.divs.last.Store(&poolDivs{h: g.h, w: g.w, div: div})
	}
	return div
}

// sideDivisors is divisors laid out for poolSide's chunks of per planes
// of wp columns side by side (see sideDivs), and its row stride: from the
// cache when the last call had the same input size and as many planes or
// more (the threads' chunks may differ by one plane: a cache of the last
// size would be made again at every call).
func (p *poolParams) sideDivisors(g *poolGeom, per, wp int) ([]float32, int) {
	base := p.divisors(g)
	var d *poolDivs
	if p.divs != nil {
		if d = p.divs.last.Load(); d != nil && (d.h != g.h || d.w != g.w) {
			d = nil
		}
	}
	if d != nil {
		if s := d.side.Load(); s != nil && s.per >= per {
			return s.div, s.per * wp
		}
	}
	row := per * wp
	div := make([]float32, g.oh*row)
	fillSlice(div, 1)
	for y := 0; y < g.oh; y++ {
		for q := 0; q < per; q++ {
			copy(div[y*row+q*wp:], base[y*g.ow:(y+1)*g.ow])
		}
	}
	if d != nil {
		d.side.Store(&sideDivs{per: per, div: div})
	}
	return div, row
}

func readPoolParams(ni *NodeInfo) (*poolParams, error) {
	a := attrsOf(ni.Node)
	ks := a.Ints("kernel_shape", nil)
	st := a.Ints("strides", nil)
	dl := a.Ints("dilations", nil)
	pads := a.Ints("pads", nil)
	p := &poolParams{divs: new(divCache), autoPad: a.String("auto_pad", "NOTSET"), ceil: a.Int("ceil_mode", 0) != 0,
		countIncludePad: a.Int("count_include_pad", 0) != 0}
	p.columnMajor = a.Int("storage_order", 0) != 0
	if a.err != nil {
		return nil, a.err
	}
	p.spatial = len(ks)
	if p.spatial < 1 || p.spatial > 2 {
		return nil, fmt.Errorf("kernel_shape %v: want one value per spatial axis", ks)
	}
	pick := func(v []int64, def int) (int, int, error) {
		if v == nil {
			return def, def, nil
		}
		if len(v) != p.spatial {
			return 0, 0, fmt.Errorf("attribute %v does not fit kernel_shape %v", v, ks)
		}
		if p.spatial == 1 {
			return def, int(v[0]), nil
		}
		return int(v[0]), int(v[1]), nil
	}
	var err error
	if p.kh, p.kw, err = pick(ks, 1); err != nil {
		return nil, err
	}
	if p.spatial == 1 {
		p.kh = 1
	}
	if p.sh, p.sw, err = pick(st, 1); err != nil {
		return nil, err
	}
	if p.dh, p.dw, err = pick(dl, 1); err != nil {
		return nil, err
	}
	if pads != nil {
		if len(pads) != 2*p.spatial {
			return nil, fmt.Errorf("pads %v do not fit kernel_shape %v", pads, ks)
		}
		if p.spatial == 1 {
			p.padL, p.padR = int(pads[0]), int(pads[1])
		} else {
			p.padT, p.padL, p.padB, p.padR = int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
		}
	}
	if p.spatial == 1 {
		p.sh, p.dh = 1, 1
	}
	return p, nil
}

// poolOut is the pooled size of one axis and its leading padding.
func poolOut(in, k, s, d, pb, pe int, autoPad string, ceil bool) (int, int) {
	ek := d*(k-1) + 1
	switch autoPad {
	case "VALID":
		return (in-ek)/s + 1, 0
	case "SAME_UPPER", "SAME_LOWER":
		out := (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if autoPad == "SAME_UPPER" {
			return out, total / 2
		}
		return out, total - total/2
	}
	num := in + pb + pe - ek
	out := num/s + 1
	if ceil {
		out = (num+s-1)/s + 1
		// The last window must start inside the input or the leading padding.
		if (out-1)*s >= in+pb {
			out--
		}
	}
	return out, pb
}

// poolGeom is the geometry of one pooling call: input and output plane
// sizes, the leading pads in effect, and where explicit padding ends (beyond
// it, in ceil mode, positions never count toward an average).
type poolGeom struct {
	*poolParams
	h, w, oh, ow, pt, pl, hEnd, wEnd int
}

// geometry places the windows on an h x w input.
func (p *poolParams) geometry(h, w int) (*poolGeom, error) {
	g := &poolGeom{poolParams: p, h: h, w: w}
	g.oh, g.pt = poolOut(h, p.kh, p.sh, p.dh, p.padT, p.padB, p.autoPad, p.ceil)
	g.ow, g.pl = poolOut(w, p.kw, p.sw, p.dw, p.padL, p.padR, p.autoPad, p.ceil)
	if g.oh <= 0 || g.ow <= 0 {
		return nil, fmt.Errorf("input %dx%d is too small for the pooling window", h, w)
	}
	g.hEnd, g.wEnd = h+p.padB, w+p.padR
	if p.autoPad != "NOTSET" {
		// Automatic padding counts toward an average (count_include_pad) on
		// both sides, as ONNX Runtime counts it: the windows see it as
		// explicit padding of what it adds.
		q := *p
		q.padT, q.padL = g.pt, g.pl
		g.poolParams = &q
		g.hEnd, g.wEnd = h+(g.oh-1)*p.sh+(p.dh*(p.kh-1)+1)-h-g.pt, w+(g.ow-1)*p.sw+(p.dw*(p.kw-1)+1)-w-g.pl
		g.hEnd, g.wEnd = max(g.hEnd, h), max(g.wEnd, w)
	}
	return g, nil
}

func newPool(kind string) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		if ks, err := ni.Node.AttrInts("kernel_shape", nil); err == nil && len(ks) >= 3 {
			return newPoolND(kind, ni)
		}
		p, err := readPoolParams(ni)
		if err != nil {
			return nil, err
		}
		if kind == "avg" && (p.dh != 1 || p.dw != 1) && ni.Opset < 19 {
			return nil, fmt.Errorf("AveragePool dilations need opset 19")
		}
		wantIndices := len(ni.Node.Outputs) > 1 && ni.Node.Outputs[1] != nil
		var ctxRun func(ctx *Context, x *graph.Tensor) ([]*graph.Tensor, error)
		k := KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if kind == "max" && (x.DType == graph.Int8 || x.DType == graph.Uint8) {
				// Exact through float32; quantized graphs pool int8/uint8 directly.
				return viaCast(x, graph.Float, func(f *graph.Tensor) ([]*graph.Tensor, error) { return ctxRun(ctx, f) })
			}
			if err := wantFloat(x, "pool input"); err != nil {
				return nil, err
			}
			xs, err := as4D(x.Shape, p.spatial)
			if err != nil {
				return nil, err
			}
			n, c := xs[0], xs[1]
			g, err := p.geometry(xs[2], xs[3])
			if err != nil {
				return nil, err
			}
			shape := []int{n, c, g.oh, g.ow}
			if p.spatial == 1 {
				shape = []int{n, c, g.ow}
			}
			out := ctx.Float32(shape)
			xd, od := x.Float32s(), out.Float32s()
			threads := threadsFor(ctx, n*c*g.oh*g.ow*p.kh*p.kw, 1<<14)
			if kind == "max" && wantIndices {
				// MaxPool's optional second output: the flat index of each maximum in
				// the input (row-major, or column-major within each plane).
				idxT := ctx.Empty(graph.Int64, shape)
				parallelFor(threads, n*c, func(lo, hi int) { poolReference(g, kind, xd, od, idxT.Int64s(), lo, hi) })
				return []*graph.Tensor{out, idxT}, nil
			}
			parallelFor(threads, n*c, func(lo, hi int) { poolRows(ctx, g, kind, xd, od, lo, hi) })
			return one(out), nil
		})
		ctxRun = func(ctx *Context, x *graph.Tensor) ([]*graph.Tensor, error) { return k(ctx, []*graph.Tensor{x}) }
		return k, nil
	}
}

// poolReference pools planes [lo, hi) one window at a time, as the ONNX
// specification reads. It alone gives MaxPool's indices; the tests hold
// poolRows to it.
func poolReference(g *poolGeom, kind string, xd, od []float32, indices []int64, lo, hi int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	for nc := lo; nc < hi; nc++ {
		src := xd[nc*h*w : (nc+1)*h*w]
		dst := od[nc*oh*ow : (nc+1)*oh*ow]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				y0, x0 := oy*p.sh-g.pt, ox*p.sw-g.pl
				best := float32(math.Inf(-1))
				bestAt := -1
				var sum float32
				cnt, padCnt := 0, 0
				for ki := 0; ki < p.kh; ki++ {
					iy := y0 + ki*p.dh
					for kj := 0; kj < p.kw; kj++ {
						ix := x0 + kj*p.dw
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							if iy >= -p.padT && iy < g.hEnd && ix >= -p.padL && ix < g.wEnd {
								padCnt++
							}
							continue
						}
						v := src[iy*w+ix]
						if v > best || v != v || bestAt < 0 {
							best = v
							if p.columnMajor {
								bestAt = ix*h + iy
							} else {
								bestAt = iy*w + ix
							}
						}
						sum += v
						cnt++
					}
				}
				if kind == "max" {
					dst[oy*ow+ox] = best
					if indices != nil {
						indices[nc*oh*ow+oy*ow+ox] = int64(nc*h*w + bestAt)
					}
				} else {
					div := cnt
					if p.countIncludePad {
						div += padCnt
					}
					dst[oy*ow+ox] = 0
					if div > 0 {
						dst[oy*ow+ox] = sum / float32(div)
					}
				}
			}
		}
	}
}

// poolRows pools planes [lo, hi) separably with vector loops over whole
// planes: the plane is padded (every row to the same width, padding rows
// added), reduced along x over the window at every stride-1 position (max: by
// doubling, max(m[i], m[i+1]), then of those two apart, and so on, so a
// window of k takes about log2(k)+1 passes however large; sum: k adds),
// subsampled to the output columns, then reduced along y the same way with
// whole rows as elements, and subsampled to the output rows. Windows that
// straddle two padded rows land only in positions nothing reads. SPP's 13x13
// stride-1 max costs 4+4 vector passes per element instead of 169 scalar
// compares.
func poolRows(ctx *Context, g *poolGeom, kind string, xd, od []float32, lo, hi int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	ekw, ekh := p.dw*(p.kw-1)+1, p.dh*(p.kh-1)+1
	w1 := (ow-1)*p.sw + 1 // stride-1 window positions along x
	wp := w1 + ekw - 1    // padded row width
	hp := (oh-1)*p.sh + ekh
	isMax := kind == "max"
	fill := float32(0)
	if isMax {
		fill = float32(math.Inf(-1))
	}
	c0, c1 := min(g.pl, wp), min(g.pl+w, wp) // padded columns holding input columns from 0
	if isMax && p.kh == 3 && p.kw == 3 && p.sh == 2 && p.sw == 2 && p.dh == 1 && p.dw == 1 {
		max3x3s2(g, xd, od, lo, hi)
		return
	}
	if p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.dh == 1 && p.dw == 1 && g.pt == 0 && g.pl == 0 && hp <= h && wp <= w {
		windows2x2s2(g, isMax, xd, od, lo, hi)
		return
	}
	if isMax && g.pt == 0 && g.pl == 0 && hp <= h && wp <= w {
		maxInside(ctx, g, xd, od, lo, hi)
		return
	}
	if isMax && p.sh > 1 {
		maxRowsStrided(ctx, g, xd, od, lo, hi, wp, c0, c1)
		return
	}
	if p.sh == 1 && p.sw == 1 && g.pt+h <= hp && c1 == g.pl+w {
		poolStride1(ctx, g, isMax, xd, od, lo, hi)
		return
	}
	padded := ctx.Scratch(hp * wp) // row j: input row j - pt with its padding
	defer ctx.Release(padded)
	cols := ctx.Scratch(hp * ow) // padded reduced along x, at the output columns
	defer ctx.Release(cols)
	var sum, div []float32
	if !isMax {
		sum = ctx.Scratch(max(hp*wp, hp*ow))
		defer ctx.Release(sum)
		div = p.divisors(g)
	}
	for nc := lo; nc < hi; nc++ {
		src := xd[nc*h*w : (nc+1)*h*w]
		dst := od[nc*oh*ow : (nc+1)*oh*ow]
		for j := 0; j < hp; j++ {
			row := padded[j*wp : (j+1)*wp]
			y := j - g.pt
			if y < 0 || y >= h {
				fillSlice(row, fill)
				continue
			}
			fillSlice(row[:c0], fill)
			copy(row[c0:c1], src[y*w+c0-g.pl:])
			fillSlice(row[c1:], fill)
		}
		// Along x: red[j*wp + x] is the window starting at padded column x of row j.
		var red []float32
		if isMax {
			red = maxWindows(padded, p.kw, p.dw)
		} else {
			red = sumWindows(sum, padded, p.kw, p.dw)
		}
		for j := 0; j < hp; j++ {
			r, c := red[j*wp:], cols[j*ow:(j+1)*ow]
			if p.sw == 1 {
				copy(c, r[:ow])
				continue
			}
			for ox := range c {
				c[ox] = r[ox*p.sw]
			}
		}
		// Along y, rows of ow as elements.
		if isMax {
			red = maxWindows(cols, p.kh, p.dh*ow)
		} else {
			red = sumWindows(sum, cols, p.kh, p.dh*ow)
		}
		if p.sh == 1 {
			copy(dst, red[:oh*ow])
		} else {
			for oy := 0; oy < oh; oy++ {
				copy(dst[oy*ow:(oy+1)*ow], red[oy*p.sh*ow:])
			}
		}
		if !isMax {
			vec.Div(dst, dst, div)
		}
	}
}

// max3x3s2 is poolRows' max for 3x3 windows at stride 2 (SqueezeNet's
// pools), reading the input where it lies: the outputs whose window lies
// inside the plane in one vec.Max3Stride2Rows call per plane, max down the
// columns and then across three at every other column; the rest (windows
// reaching into padding, at most a row or column on each side) one row or
// one output at a time, over the rows and columns the window has. The max is
// taken in the order maxInside and maxRowsStrided take it (down, then
// across), so the bits are theirs, NaN payloads and signed zeros too.
func max3x3s2(g *poolGeom, xd, od []float32, lo, hi int) {
	if vec.HasMax3Stride2Edges() && !noMax3Edges {
		max3x3s2Edges(g, xd, od, lo, hi)
		return
	}
	h, w, oh, ow := g.h, g.w, g.oh, g.ow
	oy0, oy1 := inner3s2(h, g.pt, oh)
	ox0, ox1 := inner3s2(w, g.pl, ow)
	inf := float32(math.Inf(-1))
	var rows [3][]float32
	for nc := lo; nc < hi; nc++ {
		src := xd[nc*h*w : (nc+1)*h*w]
		out := od[nc*oh*ow : (nc+1)*oh*ow]
		if oy1 > oy0 && ox1 > ox0 {
			vec.Max3Stride2Rows(out[oy0*ow+ox0:], ow, src[(2*oy0-g.pt)*w+2*ox0-g.pl:], w, oy1-oy0, ox1-ox0)
		}
		for oy := 0; oy < oh; oy++ {
			if oy == oy0 && ox0 == 0 && ox1 == ow && oy1 > oy0 {
				oy = oy1 - 1 // those rows are done whole
				continue
			}
			dst := out[oy*ow : (oy+1)*ow]
			k := 0
			for y := 2*oy - g.pt; y < 2*oy-g.pt+3; y++ {
				if y >= 0 && y < h {
					rows[k] = src[y*w : (y+1)*w]
					k++
				}
			}
			if k == 0 { // all padding
				fillSlice(dst, inf)
				continue
			}
			// A max over two rows is the same with the first repeated.
			r0, r1, r2 := rows[0], rows[0], rows[k-1]
			if k == 3 {
				r1 = rows[1]
			}
			inside := oy >= oy0 && oy < oy1
			if !inside && ox1 > ox0 {
				s := 2*ox0 - g.pl
				vec.Max3Stride2(dst[ox0:ox1], r0[s:], r1[s:], r2[s:])
			}
			for ox := 0; ox < ow; ox++ {
				if ox == ox0 && ox1 > ox0 {
					if ox = ox1; ox >= ow {
						break
					}
				}
				best := inf
				for x := 2*ox - g.pl; x < 2*ox-g.pl+3; x++ {
					if x < 0 || x >= w {
						continue
					}
					v := r0[x]
					for _, r := range [2][]float32{r1, r2} {
						if u := r[x]; u != u || u > v {
							v = u
						}
					}
					if v != v || v > best {
						best = v
					}
				}
				dst[ox] = best
			}
		}
	}
}

// inner3s2 is the range [o0, o1) of the out outputs along an axis of n
// inputs whose 3-wide stride-2 window 2o-pad .. 2o-pad+2 lies inside.
func inner3s2(n, pad, out int) (int, int) {
	o0 := min(out, (pad+1)/2)
	if n-3+pad < 0 {
		return o0, o0
	}
	return o0, max(o0, min(out, (n-3+pad)/2+1))
}

// max3x3s2Edges is max3x3s2 with vec.Max3Stride2Edges, which takes windows
// past a row's ends in the same vector loop (AVX-512 masked loads): the rows
// whose windows lie inside in one call per plane, each padded top or bottom
// row in one with its rows repeated as max3x3s2 repeats them. The same
// bits; BenchmarkMax3x3s2Edges, ms against the AVX2 form (edge outputs one
// at a time): ResNet's padded pool on 64x112x112 0.21 / 0.60, SqueezeNet's
// ceil-mode ones 0.65-0.71x.
func max3x3s2Edges(g *poolGeom, xd, od []float32, lo, hi int) {
	h, w, oh, ow := g.h, g.w, g.oh, g.ow
	if h*w <= max3AcrossPlane && hi-lo > 1 {
		max3x3s2Across(g, xd, od, lo, hi)
		return
	}
	oy0, oy1 := inner3s2(h, g.pt, oh)
	for nc := lo; nc < hi; nc++ {
		src := xd[nc*h*w : (nc+1)*h*w]
		out := od[nc*oh*ow : (nc+1)*oh*ow]
		if oy1 > oy0 {
			vec.Max3Stride2Edges(out[oy0*ow:], ow, src[(2*oy0-g.pt)*w:], w, oy1-oy0, ow, -g.pl, w, 2*w, 2*w)
		}
		for oy := 0; oy < oh; oy++ {
			if oy >= oy0 && oy < oy1 {
				continue
			}
			first, last := max(0, 2*oy-g.pt), min(h, 2*oy-g.pt+3)-1
			if last < first { // all padding
				fillSlice(out[oy*ow:(oy+1)*ow], float32(math.Inf(-1)))
				continue
			}
			mid := first // two rows: the first repeated
			if last-first == 2 {
				mid = first + 1
			}
			vec.Max3Stride2Edges(out[oy*ow:], ow, src[first*w:], w, 1, ow, -g.pl, (mid-first)*w, (last-first)*w, 0)
		}
	}
}

// max3x3s2Across is max3x3s2Edges on small planes: output row by output
// row, each call taking that row of every plane (the planes as the rows
// of one vec.Max3Stride2Edges call, h*w apart) instead of a call per plane.
// Against a call per plane (1 thread, the same bits): Inception's 144
// planes of 11x11 0.94x the time, 64 of 23x23 0.90x, 64 of 13x13 0.76x,
// 512 of 7x7 0.81x; 32 of 51x51 1.02x, SqueezeNet's 256 of 27x27 1.16x
// (a plane's rows no longer read while in cache): up to max3AcrossPlane.
func max3x3s2Across(g *poolGeom, xd, od []float32, lo, hi int) {
	h, w, oh, ow := g.h, g.w, g.oh, g.ow
	src, out := xd[lo*h*w:hi*h*w], od[lo*oh*ow:hi*oh*ow]
	for oy := 0; oy < oh; oy++ {
		first, last := max(0, 2*oy-g.pt), min(h, 2*oy-g.pt+3)-1
		if last < first { // all padding
			for i := oy * ow; i < len(out); i += oh * ow {
				fillSlice(out[i:i+ow], float32(math.Inf(-1)))
			}
			continue
		}
		mid := first // two rows: the first repeated
		if last-first == 2 {
			mid = first + 1
		}
		vec.Max3Stride2Edges(out[oy*ow:], oh*ow, src[first*w:], w, hi-lo, ow, -g.pl, (mid-first)*w, (last-first)*w, h*w)
	}
}

// max3AcrossPlane is the largest plane (floats) max3x3s2Across takes.
const max3AcrossPlane = 24 * 24

// noMax3Edges keeps 3x3 stride-2 max pools on max3x3s2's AVX2 path, for the
// tests and the benchmark that compare the two.
var noMax3Edges = false

// maxRowsStrided is poolRows' max for strides of 2 or more along y (windows
// other than max3x3s2's): along y first, at the output rows only, reading
// the input rows where they lie (no padded copy of the plane); then along x
// over those oh rows, as poolRows does, and subsampled to the output columns.
// Reducing along x first, over every padded row, did about twice the work.
func maxRowsStrided(ctx *Context, g *poolGeom, xd, od []float32, lo, hi, wp, c0, c1 int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	inf := float32(math.Inf(-1))
	rows := ctx.Scratch(oh * wp) // row oy: the max over its window's input rows, padded to wp
	defer ctx.Release(rows)
	for nc := lo; nc < hi; nc++ {
		src := xd[nc*h*w : (nc+1)*h*w]
		dst := od[nc*oh*ow : (nc+1)*oh*ow]
		for oy := 0; oy < oh; oy++ {
			row := rows[oy*wp : (oy+1)*wp]
			fillSlice(row[:c0], inf)
			fillSlice(row[c1:], inf)
			first := true
			for ki := 0; ki < p.kh; ki++ {
				y := oy*p.sh + ki*p.dh - g.pt
				if y < 0 || y >= h {
					continue // a padding row adds nothing to a max
				}
				in := src[y*w+c0-g.pl : y*w+c1-g.pl]
				if first {
					copy(row[c0:c1], in)
					first = false
				} else {
					vec.Max(row[c0:c1], row[c0:c1], in)
				}
			}
			if first {
				fillSlice(row[c0:c1], inf)
			}
		}
		red := maxWindows(rows[:oh*wp], p.kw, p.dw)
		for oy := 0; oy < oh; oy++ {
			vec.Strided(dst[oy*ow:(oy+1)*ow], red[oy*wp:], p.sw)
		}
	}
}

// maxInside is poolRows' max when every window lies inside the input (no
// padding reaches one, as in unpadded pools in ceil mode whose last window
// fits): the planes, a few at a time (about 256 KiB, to stay in L2), are
// reduced along y and then along x as one flat array each, whole rows as the
// elements along y, and the output is read off at the window starts. Windows
// that run past a row or plane land only in positions nothing reads. A
// stride-2 pool reduces twice the rows it needs this way, in a few long
// vector calls instead of several short ones per output row (which cost more
// on maps of 13-55 columns).
func maxInside(ctx *Context, g *poolGeom, xd, od []float32, lo, hi int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	plane := h * w
	per := max(1, (1<<16)/plane)
	buf := ctx.Scratch(min(per, hi-lo) * plane)
	defer ctx.Release(buf)
	for b0 := lo; b0 < hi; b0 += per {
		b1 := min(hi, b0+per)
		red := maxWindowsFrom(buf[:(b1-b0)*plane], xd[b0*plane:b1*plane], p.kh, p.dh*w)
		red = maxWindows(red, p.kw, p.dw)
		for nc := b0; nc < b1; nc++ {
			for oy := 0; oy < oh; oy++ {
				vec.Strided(od[(nc*oh+oy)*ow:(nc*oh+oy+1)*ow], red[(nc-b0)*plane+oy*p.sh*w:], p.sw)
			}
		}
	}
}

// windows2x2s2 is poolRows for 2x2 windows at stride 2 inside the plane
// (VGG's and U-Net's max pools, DenseNet's and ResNet-D's average ones):
// each plane's output rows in one vec call, reading the inputs where they
// lie. The general path laid out a padded copy and took every other column
// with a scalar loop per row (the average 1.7x ONNX Runtime's time); the max
// went through maxInside's three passes over the plane (1.32x). Both take
// poolRows' order (along y then x for the max, ((a + b) + (c + d)) for the
// sum, whose quarter is exact as a multiplication), so the bits are its.
func windows2x2s2(g *poolGeom, isMax bool, xd, od []float32, lo, hi int) {
	h, w, oh, ow := g.h, g.w, g.oh, g.ow
	f := vec.Avg2x2Stride2Rows
	if isMax {
		f = vec.Max2x2Stride2Rows
	}
	for nc := lo; nc < hi; nc++ {
		f(od[nc*oh*ow:(nc+1)*oh*ow], ow, xd[nc*h*w:(nc+1)*h*w], w, oh, ow)
	}
}

// poolStride1 is poolRows for stride-1 windows (SPP's 5, 9 and 13 max,
// YOLOv5's SPPF 5, Inception's 3x3 average): the planes of a chunk are laid
// out padded one after another in one buffer, so each reduction pass, and
// the copies in and out, is one call over the chunk instead of one per row
// (a 20x20 plane padded to 24x24 took some 80 calls on a few dozen floats
// each). Windows that straddle two padded rows or planes land only in
// positions nothing reads. The padding (-Inf for max, 0 for sums) is filled
// once: no pass writes the padded buffer, so the borders stay for the next
// chunk. The reductions run in poolRows' order (along x, then y; max by
// doubling windows, sums left to right and top to bottom), so the bits are
// its bits.
func poolStride1(ctx *Context, g *poolGeom, isMax bool, xd, od []float32, lo, hi int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	wp := ow + p.dw*(p.kw-1) // = pl + w + pr
	hp := oh + p.dh*(p.kh-1)
	plane := hp * wp
	per := min(hi-lo, max(1, poolChunkFloats/plane))
	// A 3x3 average (Inception's) sums and divides in one pass
	// (vec.Avg3x3Rows, the same sums in the same order), needing no
	// buffers for the passes: 1x64x56x56 with count_include_pad 0 took
	// 1.42x ONNX Runtime's time in the passes. Not on rows narrower than
	// 8, where the one pass is a call per plane that fills no vector and
	// the passes run over every plane of the chunk at once (paired, same
	// bits: 256 planes of 7x7 14 us against 44, 5x5 0.43x, 3x3 0.69x,
	// 16x6 0.25x; from 8 wide the one pass: 8x8 0.76x the passes' time,
	// 11x11 and 17x17 0.96x, 56x56 0.81x).
	avg3x3 := !isMax && p.kh == 3 && p.kw == 3 && p.dh == 1 && p.dw == 1
	avg3 := avg3x3 && ow >= 8
	if !noPoolSide && (avg3x3 && ow < avg3SideWidth || !avg3x3 && ow < poolSideWidth) {
		poolSide(ctx, g, isMax, avg3x3, xd, od, lo, hi)
		return
	}
	padded := ctx.Scratch(per * plane)
	defer ctx.Release(padded)
	var red, sum, div []float32
	if !avg3 {
		red = ctx.Scratch(per * plane)
		defer ctx.Release(red)
	}
	if isMax {
		fillSlice(padded, float32(math.Inf(-1)))
	} else {
		clear(padded)
		if !avg3 {
			sum = ctx.Scratch(per * plane)
			defer ctx.Release(sum)
		}
		div = p.divisors(g)
	}
	for b0 := lo; b0 < hi; b0 += per {
		b1 := min(hi, b0+per)
		for nc := b0; nc < b1; nc++ {
			mustCopyRows(padded[(nc-b0)*plane+g.pt*wp+g.pl:], wp, xd[nc*h*w:], w, h, w)
		}
		if avg3 {
			// One pass from the padded planes straight to the output.
			for nc := b0; nc < b1; nc++ {
				vec.Avg3x3Rows(od[nc*oh*ow:(nc+1)*oh*ow], ow, padded[(nc-b0)*plane:], wp, div, ow, oh, ow)
			}
			continue
		}
		n := (b1 - b0) * plane
		var m []float32
		if isMax {
			m = maxWindowsFrom(red[:n], padded[:n], p.kw, p.dw)
			m = maxWindows(m, p.kh, p.dh*wp)
		} else {
			m = sumWindows(red, padded[:n], p.kw, p.dw)
			m = sumWindows(sum, m, p.kh, p.dh*wp)
		}
		for nc := b0; nc < b1; nc++ {
			out := od[nc*oh*ow : (nc+1)*oh*ow]
			copyRowsOut(out, ow, m[(nc-b0)*plane:], wp, oh)
			if !isMax {
				vec.Div(out, out, div)
			}
		}
	}
}

// poolSide is poolStride1 on small planes: the planes of a chunk lie side
// by side, row y of every plane in padded row y of the chunk, so that the
// copies in and out take a call per row instead of one per plane, and the
// passes (or, for a 3x3 average, avg3, one vec.Avg3x3Rows call) run over
// the chunk's rows as they do over a plane's: the windows that straddle two
// planes land in the columns between them, which nothing reads. The same
// sums, maxima and divisions in the same order as plane by plane, so the
// same bits. Against plane by plane (BenchmarkPoolSide, 1 thread, padded
// 3x3 windows): the average on 288 planes of 5x5 0.46-0.50x the time, 832
// of 7x7 0.58-0.66x, 128 of 11x11 0.86x, but 528 of 14x14 1.33-1.42x and
// 256 of 28x28 1.05-1.20x (from avg3SideWidth on, the planes one by one);
// the max, whose passes cost more than the copies' calls, 0.40-0.78x on
// 5x5, 0.91-1.10x on 7x7 and 11x11 in chunks of 128 KiB; in chunks of 8
// KiB (poolChunkFloats) 7x7 0.79x, 14x14 1.05-1.09x (from poolSideWidth
// on, one by one).
func poolSide(ctx *Context, g *poolGeom, isMax, avg3 bool, xd, od []float32, lo, hi int) {
	h, w, oh, ow, p := g.h, g.w, g.oh, g.ow, g.poolParams
	wp := ow + p.dw*(p.kw-1) // = pl + w + pr
	hp := oh + p.dh*(p.kh-1) // = pt + h + pb
	per := min(hi-lo, max(1, poolChunkFloats/(hp*wp)))
	vw := per * wp // a padded row of the chunk
	var div []float32
	var divRow int
	if !isMax {
		div, divRow = g.sideDivisors(g, per, wp)
	}
	// One scratch buffer for the padded rows and the passes (two moved the
	// pool's reuse: Inception's runs made a buffer after run 4).
	parts := 2 // padded, and the output or the passes' one
	if !isMax && !avg3 {
		parts = 3 // and the sums' second
	}
	buf := ctx.Scratch(parts * hp * vw)
	defer ctx.Release(buf)
	padded, red, sum := buf[:hp*vw], buf[hp*vw:2*hp*vw], buf[2*hp*vw:]
	if isMax { // the padding; the copies write the planes' insides only
		fillSlice(padded, float32(math.Inf(-1)))
	} else {
		clear(padded)
	}
	for b0 := lo; b0 < hi; b0 += per {
		k := min(hi-b0, per)
		for y := 0; y < h; y++ {
			mustCopyRows(padded[(y+g.pt)*vw+g.pl:], wp, xd[(b0*h+y)*w:], h*w, k, w)
		}
		var m []float32
		switch {
		case avg3:
			m = red[:oh*vw]
			vec.Avg3x3Rows(m, vw, padded, vw, div, divRow, oh, k*wp-2)
		case isMax:
			m = maxWindowsFrom(red, padded, p.kw, p.dw)
			m = maxWindows(m, p.kh, p.dh*vw)
		default:
			m = sumWindows(red, padded, p.kw, p.dw)
			m = sumWindows(sum, m, p.kh, p.dh*vw)
			n := (k-1)*wp + ow // a row's outputs, the last plane's included
			for y := 0; y < oh; y++ {
				vec.Div(m[y*vw:y*vw+n], m[y*vw:y*vw+n], div[y*divRow:y*divRow+n])
			}
		}
		for y := 0; y < oh; y++ {
			mustCopyRows(od[(b0*oh+y)*ow:], oh*ow, m[y*vw:], wp, k, ow)
		}
	}
}

// avg3SideWidth is the output row width from which poolStride1 takes a 3x3
// average plane by plane rather than side by side (poolSide), and
// poolSideWidth the same for other windows; noPoolSide keeps every plane on
// its own, for the tests and the benchmark that compare.
var (
	avg3SideWidth = 12
	poolSideWidth = 8
	noPoolSide    = false
)

// mustCopyRows is vec.CopyRows where the sizes hold by construction.
func mustCopyRows(dst []float32, dstRow int, src []float32, srcRow, rows, cols int) {
	if err := vec.CopyRows(dst, dstRow, src, srcRow, rows, cols); err != nil {
		panic(err)
	}
}

// sumWindows writes to dst the sums of src's windows of k elements spaced
// step apart, src[i] + src[i+step] + ... + src[i+(k-1)*step] added left to
// right, for every start i that fits, and returns that prefix of dst.
func sumWindows(dst, src []float32, k, step int) []float32 {
	n := len(src) - (k-1)*step
	s := dst[:n]
	j := 1
	switch {
	case k == 1:
		copy(s, src[:n])
	case k == 2:
		vec.Add(s, src[:n], src[step:step+n])
		j = 2
	default: // the first three in one pass (the same adds, in order)
		vec.Add3(s, src[:n], src[step:step+n], src[2*step:2*step+n])
		j = 3
	}
	for ; j < k; j++ {
		vec.Add(s, s, src[j*step:j*step+n])
	}
	return s
}

// poolChunkFloats is about how many floats of padded planes poolStride1
// and poolSide reduce at a time (8 KiB: they and the reduced copies stay in
// L1 from pass to pass). At 128 KiB, in L2, the passes cost more than
// their calls: BenchmarkPoolSide, 1 thread, max plane by plane 256x28x28
// 90 -> 68 us, 528x14x14 51 -> 45, 832x7x7 35 -> 30 (side by side 33 ->
// 24), averages 3-7% less; one 3x3 average side by side (128x11x11, one
// pass) 8.1 -> 8.8. Survey: GoogLeNet's max pools 28x28 1.27 -> 0.96x ORT,
// 7x7 1.94 -> 1.35 (with poolSideWidth 8), SPPF's 5x5 1.14 -> 0.88.
var poolChunkFloats = 1 << 11

// maxWindows reduces m in place to the maxima of windows of k elements spaced
// step apart, m[i], m[i+step], ..., m[i+(k-1)*step], for every start i that
// fits; it returns that prefix of m. Windows of 2, 4, 8, ... come from two of
// half the size; the last step covers k with two overlapping power-of-two
// windows.
func maxWindows(m []float32, k, step int) []float32 {
	return maxWindowsFrom(m, m, k, step)
}

// maxWindowsFrom is maxWindows reading src and writing dst (len(src) long,
// or src itself).
func maxWindowsFrom(dst, src []float32, k, step int) []float32 {
	n, q := len(src), 1
	if k == 1 {
		copy(dst, src)
		return dst[:n]
	}
	vec.Max(dst[:n-step], src[:n-step], src[step:n])
	n -= step
	m := dst
	for q = 2; 2*q <= k; q *= 2 {
		s := q * step
		vec.Max(m[:n-s], m[:n-s], m[s:n])
		n -= s
	}
	if k > q {
		s := (k - q) * step
		vec.Max(m[:n-s], m[:n-s], m[s:n])
		n -= s
	}
	return m[:n]
}

// avgDivisors fills div (oh x ow) with what each average divides by: the
// input positions its window covers, or with count_include_pad also the
// explicit padding it covers; a window covering nothing divides by 1 (its sum is 0).
func avgDivisors(g *poolGeom, div []float32) {
	p := g.poolParams
	count := func(o, s, pad, k, d, n, lo, end int) int {
		c := 0
		for i := 0; i < k; i++ {
			at := o*s - pad + i*d
			if p.countIncludePad && at >= lo && at < end || !p.countIncludePad && at >= 0 && at < n {
				c++
			}
		}
		return c
	}
	cx := make([]int, g.ow)
	for ox := range cx {
		cx[ox] = count(ox, p.sw, g.pl, p.kw, p.dw, g.w, -p.padL, g.wEnd)
	}
	for oy := 0; oy < g.oh; oy++ {
		cy := count(oy, p.sh, g.pt, p.kh, p.dh, g.h, -p.padT, g.hEnd)
		for ox, c := range cx {
			div[oy*g.ow+ox] = float32(max(1, cy*c))
		}
	}
}

// fillSlice sets every element of s to v: a short loop, then copies that
// double the filled prefix (memmove runs at vector speed; Go's loop does not).
func fillSlice(s []float32, v float32) {
	n := min(len(s), 16)
	for i := 0; i < n; i++ {
		s[i] = v
	}
	for n < len(s) {
		n += copy(s[n:], s[:n])
	}
}

// viaCast runs f on x cast to dt and casts the first output back to x's type.
func viaCast(x *graph.Tensor, dt graph.DataType, f func(*graph.Tensor) ([]*graph.Tensor, error)) ([]*graph.Tensor, error) {
	c, err := castTensor(x, dt)
	if err != nil {
		return nil, err
	}
	outs, err := f(c)
	if err != nil {
		return nil, err
	}
	back, err := castTensor(outs[0], x.DType)
	if err != nil {
		return nil, err
	}
	outs[0] = back
	return outs, nil
}

func newGlobalPool(kind string) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		var p float64 // GlobalLpPool's order (lppool.go)
		if kind == "lp" {
			var err error
			if p, err = lpOrder(ni); err != nil {
				return nil, err
			}
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if err := wantFloat(x, "pool input"); err != nil {
				return nil, err
			}
			if x.Rank() < 3 {
				return nil, fmt.Errorf("global pooling needs rank >= 3, got %v", x.Shape)
			}
			nc := x.Shape[0] * x.Shape[1]
			plane := graph.Numel(x.Shape[2:])
			shape := []int{x.Shape[0], x.Shape[1]}
			for range x.Shape[2:] {
				shape = append(shape, 1)
			}
			out := ctx.Float32(shape)
			xd, od := x.Float32s(), out.Float32s()
			parallelFor(threadsFor(ctx, nc*plane, 1<<15), nc, func(lo, hi int) {
				if kind == "avg" && plane > 0 {
					// One call for all the planes: MobileNet's are 7x7, where a
					// call per plane took half the time.
					_ = vec.RowMeans(od[lo:hi], xd[lo*plane:hi*plane], plane) // the slices are hi-lo rows of plane
					return
				}
				for i := lo; i < hi; i++ {
					row := xd[i*plane : (i+1)*plane]
					if kind == "lp" {
						var sum float64
						for _, v := range row {
							sum += lpTerm(v, p)
						}
						od[i] = lpNorm(sum, p)
						continue
					}
					if kind == "max" {
						// NaNs are skipped, as ONNX Runtime's max does; -Inf when nothing else.
						od[i] = vec.MaxOf(row)
						continue
					}
					od[i] = float32(vec.Sum(row) / float64(plane))
				}
			})
			return one(out), nil
		}), nil
	}
}

func init() {
	Register("", "MaxPool", 1, newPool("max"))
	Register("", "AveragePool", 1, newPool("avg"))
	Register("", "GlobalAveragePool", 1, newGlobalPool("avg"))
	Register("", "GlobalMaxPool", 1, newGlobalPool("max"))
}
