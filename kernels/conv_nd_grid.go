package kernels

import (
	"slices"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// The grid form of Conv on three or more spatial axes: the implicit GEMM of
// conv_grid.go with the leading axes (all but the last two) as whole
// slices. The input of one image and group is laid out once, zero-padded:
// per channel, one slice per padded position of the leading axes, each
// slice the sh*sw phase planes of the last two axes (as phaseTaps and
// phaseCopies lay out a 2-D input). Tap (ci, k0, ..., kh, kw) then starts
// at a fixed offset, and an output slice (one position of the leading
// axes) is a gemm.Grid over its oh x ow pixels read at that slice's shift:
// the packed weights multiply the input where it lies, with no im2col
// matrix.
//
// A row of the grid is cols pixels wide: ow where that is a multiple of 8
// (or the kernel is one column wide), and the GEMM then stores straight
// into the output; else the phase planes' whole width wq, so that the
// 8-float groups run on across rows (Cols == RowStride: the groups are read
// contiguously, in place) and the wq-ow columns a row past ow, garbage, are
// dropped as the rows are copied out (copyRowsOut). On the survey's 28-wide
// maps that computes 30 columns a row where the 2-D grid's rounding to 8
// would compute 32.
//
// Rounding: each output is its taps' products summed in float32 in the
// weights' order (input channel, then kernel position, row-major) in gemm's
// k blocks, the bias added by the first, as the im2col form (Run's
// fallback) multiplies its column matrix: the same bits
// (TestConvNDGridMatchesIm2col), on any number of threads, which take
// whole output slices, or whole panels of one slice's columns.

// forceNDIm2col keeps N-D convolutions on the im2col form, for the tests
// and benchmarks that compare.
var forceNDIm2col = false

// ndGridMaxFloats caps a group's layout (1 GiB); larger inputs stream
// through im2col's bounded strips instead.
const ndGridMaxFloats = 1 << 28

// ndGrid is the layout of one input shape.
type ndGrid struct {
	shape []int    // the input shape it was made for
	g     convGeom // the last two axes, cg channels
	// The leading axes: output size, padded extent, input size, padding
	// before, and the floats between slices one position apart.
	outLead, padLead, inLead, pbLead, sliceStride []int
	step                                          []int // the Data shift per output step on each leading axis
	hq, wq, plane, sl                             int   // phase planes hq x wq (plane floats), sl floats a slice
	cs                                            int   // floats per channel
	cols                                          int   // grid columns a row: ow, or wq
	offs                                          []int // per tap, from the group's first channel
	phases                                        []bool
	pcs                                           []phaseCopy // one plane's copies into its slice
	direct                                        bool        // pointwise: the input is its own layout (no copy)
	items, pixels                                 int         // output slices, and pixels each
}

// ndGridFor makes the layout of a convolution of input shape x (cg channels
// a group) with kernel kern on the geometry of p (pb: the padding before,
// out: the output's spatial shape), or returns nil when the grid form does
// not take it: a depthwise convolution, one whose layout is too large, or
// one whose grid computes many columns for nothing. Those columns (a row
// past ow, a slice's last group of 8) cost mg multiply-adds a tap each,
// where im2col's copies of the taps cost about a column's multiply-adds for
// 128 output channels: small maps go to im2col when the grid computes more
// than a third more columns than it keeps and more than 128/mg more.
// Measured at one thread, 3x3x3 on 4 slices, grid against im2col: 5x5
// maps of 64 channels 0.59x, 3x3 maps of 128 0.78x, 2x2 maps of 64 0.72x
// but of 128 1.2x, 3x3 maps of 192 1.0x, 4x4 maps of 256 1.0x, 3x3 maps of
// 256 1.18x; 7x7 maps of 512 (9 columns for 7) 0.91x.
func ndGridFor(x []int, cg, mg int, kern, pb, out []int, p *ndParams) *ndGrid {
	if cg == 1 && mg == 1 {
		return nil
	}
	n := len(kern)
	lead := n - 2
	g := convGeom{c: cg, h: x[n], w: x[n+1], kh: kern[lead], kw: kern[lead+1], sh: p.strides[lead], sw: p.strides[lead+1],
		dh: p.dils[lead], dw: p.dils[lead+1], pt: pb[lead], pl: pb[lead+1], oh: out[lead], ow: out[lead+1]}
	l := &ndGrid{shape: slices.Clone(x), g: g}
	pointwise := true
	for i := 0; i < n; i++ {
		if kern[i] != 1 || p.strides[i] != 1 || pb[i] != 0 || out[i] != x[2+i] {
			pointwise = false
		}
	}
	l.items = 1
	for a := 0; a < lead; a++ {
		l.items *= out[a]
	}
	l.pixels = g.oh * g.ow
	if pointwise {
		// One grid over the whole volume: a row of every pixel, a tap per
		// input channel.
		vol := l.items * l.pixels
		l.direct, l.items, l.pixels = true, 1, vol
		l.hq, l.wq, l.cols, l.cs = 1, vol, vol, vol
		l.g.oh, l.g.ow = 1, vol
		for ci := 0; ci < cg; ci++ {
			l.offs = append(l.offs, ci*vol)
		}
		return l
	}
	ext := (g.kw - 1) * g.dw / g.sw
	l.hq, l.wq = g.oh+(g.kh-1)*g.dh/g.sh, g.ow+ext
	l.cols = g.ow
	if g.ow%8 != 0 && ext > 0 {
		l.cols = l.wq
	}
	if used, comp := g.oh*g.ow, roundUp8(g.oh*l.cols); 3*comp > 4*used && (comp-used)*mg >= 128*used {
		return nil
	}
	l.plane = l.hq * l.wq
	// An odd number of cache lines a slice and a channel, as phaseTaps'
	// channels: taps a multiple of 512 bytes apart would share L1 sets.
	l.sl = oddLines(g.sh * g.sw * l.plane)
	slicesN := 1
	for a := 0; a < lead; a++ {
		l.outLead = append(l.outLead, out[a])
		l.padLead = append(l.padLead, (out[a]-1)*p.strides[a]+(kern[a]-1)*p.dils[a]+1)
		l.inLead = append(l.inLead, x[2+a])
		l.pbLead = append(l.pbLead, pb[a])
		slicesN *= l.padLead[a]
	}
	l.sliceStride = make([]int, lead)
	l.step = make([]int, lead)
	for a, s := lead-1, l.sl; a >= 0; a-- {
		l.sliceStride[a], l.step[a] = s, s*p.strides[a]
		s *= l.padLead[a]
	}
	// Past the last slice: a row's columns beyond ow, and a last panel
	// running on past the last pixel, read on (their results dropped).
	l.cs = oddLines(slicesN*l.sl + l.wq + gridTail)
	if cg*l.cs > ndGridMaxFloats {
		return nil
	}
	l.phases = make([]bool, g.sh*g.sw)
	kt := make([]int, lead)
	for ci := 0; ci < cg; ci++ {
		for t := 0; t < graph.Numel(kern[:lead]); t++ {
			off, r := ci*l.cs, t
			for a := lead - 1; a >= 0; a-- {
				kt[a] = r % kern[a]
				r /= kern[a]
				off += kt[a] * p.dils[a] * l.sliceStride[a]
			}
			for ki := 0; ki < g.kh; ki++ {
				for kj := 0; kj < g.kw; kj++ {
					q := (ki*g.dh%g.sh)*g.sw + kj*g.dw%g.sw
					l.phases[q] = true
					l.offs = append(l.offs, off+q*l.plane+(ki*g.dh/g.sh)*l.wq+kj*g.dw/g.sw)
				}
			}
		}
	}
	l.pcs = phaseCopies(g, l.hq, l.wq, l.plane, l.phases, 0, l.hq, 0)
	return l
}

// oddLines rounds n up to an odd number of 16-float cache lines.
func oddLines(n int) int {
	n = (n + 15) / 16 * 16
	if n/16%2 == 0 {
		n += 16
	}
	return n
}

// fill lays out channels [lo, hi) of one group's input xg (channels
// inPlane floats apart) into buf, zeroing it first (the padding).
func (l *ndGrid) fill(xg, buf []float32, lo, hi int) {
	lead := len(l.inLead)
	hw := l.g.h * l.g.w
	inPlane := graph.Numel(l.inLead) * hw
	t := make([]int, lead)
	for ci := lo; ci < hi; ci++ {
		d := buf[ci*l.cs : (ci+1)*l.cs]
		clear(d)
		src := xg[ci*inPlane : (ci+1)*inPlane]
		clear(t)
		for at := 0; at < inPlane; at += hw {
			// Input position t of the leading axes: slice t+pb when the
			// convolution reads it.
			slice, in := 0, true
			for a := 0; a < lead; a++ {
				pp := t[a] + l.pbLead[a]
				if pp >= l.padLead[a] {
					in = false
				}
				slice += pp * l.sliceStride[a]
			}
			if in {
				ds := d[slice:]
				for k := range l.pcs {
					l.pcs[k].apply(src[at:at+hw], ds)
				}
			}
			for a := lead - 1; a >= 0; a-- {
				if t[a]++; t[a] < l.inLead[a] {
					break
				}
				t[a] = 0
			}
		}
	}
}

// shift is where output slice it reads in the layout.
func (l *ndGrid) shift(it int) int {
	s := 0
	for a := len(l.outLead) - 1; a >= 0; a-- {
		s += it % l.outLead[a] * l.step[a]
		it /= l.outLead[a]
	}
	return s
}

// ndGridLayout returns the kernel's layout for input shape x, making it when
// the last one was for another shape.
func (k *convNDKernel) ndGridLayout(x []int, cg, mg int, kern, pb, out []int) *ndGrid {
	if l := k.grid.Load(); l != nil && slices.Equal(l.shape, x) {
		return l
	}
	l := ndGridFor(x, cg, mg, kern, pb, out, k.p)
	if l == nil {
		l = &ndGrid{shape: slices.Clone(x)} // no offs: not taken
	}
	k.grid.Store(l)
	return l
}

// runGrid computes Run's convolution through layout l: per image and
// group, the layout, then the output slices on the threads.
func (k *convNDKernel) runGrid(ctx *Context, l *ndGrid, n, c, g, m int, xd, bias, yd []float32) {
	cg, mg := c/g, m/g
	inPlane := graph.Numel(l.shape[2:])
	outPlane := l.items * l.pixels
	packs := k.packsFor(l)
	np := l.g.oh * l.cols
	wideN := 0
	if l.cols != l.g.ow {
		wideN = mg * np
	}
	macs := mg * len(l.offs) * outPlane
	workers := threadsFor(ctx, macs, minBandMACs)
	split := workers > 1 && l.items > 1 && (l.items%workers == 0 || l.items >= 4*workers)
	seats := 1
	if split {
		seats = workers
	}
	var buf []float32
	if !l.direct {
		buf = ctx.Scratch(cg * l.cs)
		defer ctx.Release(buf)
	}
	var wides seatRegions
	if wideN > 0 {
		wides = ctx.seatScratch(seats, wideN)
		defer ctx.Release(wides.buf)
	}
	for b := 0; b < n; b++ {
		for gi := 0; gi < g; gi++ {
			xg := xd[(b*c+gi*cg)*inPlane : (b*c+(gi+1)*cg)*inPlane]
			data := buf
			if l.direct {
				data = xg
			} else {
				parallelFor(threadsFor(ctx, cg*l.cs, 1<<16), cg, func(lo, hi int) { l.fill(xg, buf, lo, hi) })
			}
			og := yd[(b*m+gi*mg)*outPlane : (b*m+(gi+1)*mg)*outPlane]
			var bg []float32
			if bias != nil {
				bg = bias[gi*mg : (gi+1)*mg]
			}
			pa := packs[gi]
			item := func(seat, it, threads int) {
				grid := gemm.Grid{Data: data[l.shift(it):], Offs: l.offs, Rows: l.g.oh, Cols: l.cols, RowStride: l.wq}
				dst, ldd := og[it*l.pixels:], outPlane
				if wideN > 0 {
					dst, ldd = wides.at(seat), np
				}
				if bg != nil {
					gemm.MulPackedAGridBias(pa, grid, bg, dst, ldd, threads)
				} else {
					gemm.MulPackedAGrid(pa, grid, 0, dst, ldd, threads)
				}
				for i := 0; wideN > 0 && i < mg; i++ {
					copyRowsOut(og[i*outPlane+it*l.pixels:], l.g.ow, dst[i*np:], l.cols, l.g.oh)
				}
			}
			if split {
				parallel.ForSeat(workers, l.items, func(seat, it int) { item(seat, it, 1) })
				continue
			}
			for it := 0; it < l.items; it++ {
				item(0, it, workers)
			}
		}
	}
}

// packsFor is the weights' packing for l's grids: PackA's, or the narrow
// grid kernel's where that computes fewer padding tiles (16 output
// channels a group).
func (k *convNDKernel) packsFor(l *ndGrid) []*gemm.PackedA {
	np := l.g.oh * l.cols
	p := k.packed[0]
	if k.narrowW == nil || gemm.NarrowRows() == 0 || gemm.GridTilesFor(p.M, gemm.NarrowRows(), np) >= gemm.GridTiles(p, np) {
		return k.packed
	}
	if v := k.narrow.Load(); v != nil {
		return *v
	}
	var v []*gemm.PackedA
	mg := p.M
	for gi := 0; gi < k.p.group; gi++ {
		v = append(v, k.narrowW(mg, gi))
	}
	k.narrow.Store(&v)
	return v
}

// ndGridState is what convNDKernel keeps for the grid form.
type ndGridState struct {
	grid    atomic.Pointer[ndGrid]
	narrow  atomic.Pointer[[]*gemm.PackedA]
	narrowW func(mg, gi int) *gemm.PackedA // packs group gi's weights for the narrow kernel
}
