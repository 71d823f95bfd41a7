package kernels

import (
	"math"
	"slices"
	"sync/atomic"

	"github.com/onnxq/onnxq/kernels/vec"
)

// The vector paths of N-D pooling (poolnd.go), plane by plane with the
// same bits as poolNDPlane, the window-by-window form, which stays for
// MaxPool's indices and as the tests' reference.
//
// MaxPool is separable: a window's maximum, taken as poolNDPlane takes it
// (a NaN wins, the later of two; of equal values, +0 and -0, the first is
// kept), is one associative operation folded over the window in row-major
// order. Reducing the last axis first (each row's run of taps), then the
// axis before it over those row maxima, and so on, only regroups that
// fold, so every bit stays, NaN payloads and signed zeros too. Each axis
// is one or two flat vector passes over the whole (padded) plane
// (maxWindows), the windows that straddle rows landing only in positions
// nothing reads; an axis with a stride is subsampled before the next one
// is reduced.
//
// AveragePool adds each window's taps in poolNDPlane's order, from +0 and
// in row-major order, in one vec.TapRows call per output row block (unit
// weights: x*1 is x), over the plane or a zero-padded copy (a padding tap
// adds +0, which changes no sum: a sum that starts at +0 is never -0), and
// divides by the same count; so the bits are poolNDPlane's.

// poolNDGeom places the windows of an N-D pool on one input size.
type poolNDGeom struct {
	ax  []poolNDAxis
	ext []int // positions the windows span along each axis, from -pad: (out-1)*s + d*(k-1) + 1
	// direct: no leading padding and the windows stay inside the input, so
	// the passes read the input where it lies.
	direct bool
}

func newPoolNDGeom(ax []poolNDAxis) *poolNDGeom {
	g := &poolNDGeom{ax: ax, ext: make([]int, len(ax)), direct: true}
	for j, a := range ax {
		g.ext[j] = (a.out-1)*a.s + a.d*(a.k-1) + 1
		if a.pad != 0 || g.ext[j] > a.in {
			g.direct = false
		}
	}
	return g
}

// rowMajor is the row-major element strides of dims.
func rowMajor(dims []int) []int {
	st := make([]int, len(dims))
	s := 1
	for j := len(dims) - 1; j >= 0; j-- {
		st[j] = s
		s *= dims[j]
	}
	return st
}

// eachIndex calls f with every index vector below dims, the last fastest
// (once, with an empty vector, when dims is empty).
func eachIndex(dims []int, f func(idx []int)) {
	for _, d := range dims {
		if d <= 0 {
			return
		}
	}
	idx := make([]int, len(dims))
	for {
		f(idx)
		j := len(dims) - 1
		for ; j >= 0; j-- {
			idx[j]++
			if idx[j] < dims[j] {
				break
			}
			idx[j] = 0
		}
		if j < 0 {
			return
		}
	}
}

// padInto copies one input plane into a padded one of dims (strides st),
// each value at its position plus the leading padding; values past dims
// (which no window reads) are left out, and the rest of dst is untouched.
func padInto(dst []float32, dims, st []int, src []float32, ax []poolNDAxis) {
	n := len(ax)
	in := make([]int, n)
	for j, a := range ax {
		in[j] = min(a.in, dims[j]-a.pad)
		if in[j] <= 0 {
			return
		}
	}
	inSt := make([]int, n)
	s := 1
	for j := n - 1; j >= 0; j-- {
		inSt[j] = s
		s *= ax[j].in
	}
	if n == 1 {
		copy(dst[ax[0].pad:], src[:in[0]])
		return
	}
	eachIndex(in[:n-2], func(idx []int) {
		d, o := 0, 0
		for j, i := range idx {
			d += (i + ax[j].pad) * st[j]
			o += i * inSt[j]
		}
		d += ax[n-2].pad*st[n-2] + ax[n-1].pad
		mustCopyRows(dst[d:], st[n-2], src[o:], ax[n-1].in, in[n-2], in[n-1])
	})
}

// ndDivCache keeps an AveragePool's divisors for the last input size.
type ndDivCache struct{ last atomic.Pointer[ndDivs] }

type ndDivs struct {
	in  []int
	div []float32 // read-only once stored
}

// ndDivisors fills what each average of the output plane divides by: the
// window's positions in the input, or with count_include_pad also those in
// the explicit padding (a box either way, so a product of per-axis counts);
// 1 for a window covering nothing (its sum is +0, as poolNDPlane's 0).
func ndDivisors(ax []poolNDAxis, countPad bool) []float32 {
	counts := make([][]int, len(ax))
	dims := make([]int, len(ax))
	for j, a := range ax {
		dims[j] = a.out
		counts[j] = make([]int, a.out)
		for o := range counts[j] {
			for k := 0; k < a.k; k++ {
				at := o*a.s - a.pad + k*a.d
				if countPad && at >= -a.padBegin && at < a.end || at >= 0 && at < a.in {
					counts[j][o]++
				}
			}
		}
	}
	var div []float32
	eachIndex(dims, func(idx []int) {
		c := 1
		for j, o := range idx {
			c *= counts[j][o]
		}
		div = append(div, float32(max(1, c)))
	})
	return div
}

// divisors is ndDivisors for ax, from c when the last call had the same input size.
func (c *ndDivCache) divisors(ax []poolNDAxis, countPad bool) []float32 {
	in := make([]int, len(ax))
	for j, a := range ax {
		in[j] = a.in
	}
	if d := c.last.Load(); d != nil && slices.Equal(d.in, in) {
		return d.div
	}
	div := ndDivisors(ax, countPad)
	c.last.Store(&ndDivs{in: in, div: div})
	return div
}

// avgND averages planes [lo, hi) of xd into od (see the comment at the top).
func avgND(ctx *Context, g *poolNDGeom, ones, div, xd, od []float32, lo, hi int) {
	ax, n := g.ax, len(g.ax)
	dims := slices.Clone(g.ext)
	if g.direct {
		for j, a := range ax {
			dims[j] = a.in
		}
	}
	st := rowMajor(dims)
	inPlane, outPlane := 1, 1
	for _, a := range ax {
		inPlane *= a.in
		outPlane *= a.out
	}
	// The taps' offsets from a window's first position, in row-major order.
	kdims := make([]int, n)
	for j, a := range ax {
		kdims[j] = a.k
	}
	offs := make([]int, 0, len(ones))
	eachIndex(kdims, func(k []int) {
		o := 0
		for j, kj := range k {
			o += kj * ax[j].d * st[j]
		}
		offs = append(offs, o)
	})
	// One TapRows call per output row block: the rows along axis n-2 (one
	// row for a 1-D pool), at each output position of the axes before.
	last := ax[n-1]
	sx, cols := last.s, last.out
	if sx > 2 { // TapRows takes column strides 1 and 2: every column, then every s-th
		sx, cols = 1, (last.out-1)*last.s+1
	}
	rows, srcRow := 1, 0
	var outer []int
	if n >= 2 {
		rows, srcRow = ax[n-2].out, ax[n-2].s*st[n-2]
		for _, a := range ax[:n-2] {
			outer = append(outer, a.out)
		}
	}
	// A plane's source must hold need floats: TapRows reads whole vectors.
	need := slices.Max(offs) + (rows-1)*srcRow + sx*max(cols, 8)
	for j, a := range ax[:max(0, n-2)] {
		need += (a.out - 1) * a.s * st[j]
	}
	var buf, tmp []float32
	if !g.direct {
		buf = ctx.Scratch(max(need, st[0]*dims[0]))
		defer ctx.Release(buf)
		clear(buf) // the padding; the copies write the same places every plane
	}
	if sx != last.s {
		tmp = ctx.Scratch(rows * cols)
		defer ctx.Release(tmp)
	}
	for nc := lo; nc < hi; nc++ {
		x := xd[nc*inPlane:]
		var src []float32
		switch {
		case !g.direct:
			padInto(buf, dims, st, x, ax)
			src = buf
		case need <= len(x):
			src = x
		default: // the last planes: TapRows would read past the input
			if buf == nil {
				buf = ctx.Scratch(max(need, inPlane))
				defer ctx.Release(buf)
			}
			copy(buf, x[:inPlane])
			clear(buf[inPlane:])
			src = buf
		}
		dst := od[nc*outPlane : (nc+1)*outPlane]
		at := 0
		eachIndex(outer, func(idx []int) {
			base := 0
			for j, o := range idx {
				base += o * ax[j].s * st[j]
			}
			if sx == last.s {
				mustTapRows(dst[at:at+rows*cols], src[base:], offs, ones, rows, cols, srcRow, sx)
			} else {
				mustTapRows(tmp, src[base:], offs, ones, rows, cols, srcRow, sx)
				for r := 0; r < rows; r++ {
					vec.Strided(dst[at+r*last.out:at+(r+1)*last.out], tmp[r*cols:], last.s)
				}
			}
			at += rows * last.out
		})
		vec.Div(dst, dst, div)
	}
}

// mustTapRows is vec.TapRows of unit weights from +0 with no epilogue,
// where the sizes hold by construction.
func mustTapRows(dst, src []float32, offs []int, ones []float32, rows, cols, srcRow, sx int) {
	if err := vec.TapRows(dst, src, offs, ones, 0, rows, cols, srcRow, sx, vec.NoEpilogue()); err != nil {
		panic(err)
	}
}

// maxND takes the maxima of planes [lo, hi) of xd into od (see the comment
// at the top).
func maxND(ctx *Context, g *poolNDGeom, xd, od []float32, lo, hi int) {
	ax, n := g.ax, len(g.ax)
	last := ax[n-1]
	dims := slices.Clone(g.ext)
	if g.direct {
		for j, a := range ax {
			dims[j] = a.in
		}
	} else if last.s > 1 {
		// Rows a whole number of strides long: the columns the last axis
		// keeps are then every s-th of the flat plane.
		dims[n-1] = (dims[n-1] + last.s - 1) / last.s * last.s
	}
	size := 1
	inPlane, outPlane := 1, 1
	for j, a := range ax {
		size *= dims[j]
		inPlane *= a.in
		outPlane *= a.out
	}
	var padded []float32
	if !g.direct {
		padded = ctx.Scratch(size)
		defer ctx.Release(padded)
		fillSlice(padded, float32(math.Inf(-1)))
	}
	bufs := ctx.Scratch(2 * size)
	defer ctx.Release(bufs)
	other := func(cur []float32) []float32 { // the scratch half cur is not
		if len(cur) > 0 && &cur[0] == &bufs[0] {
			return bufs[size:]
		}
		return bufs[:size]
	}
	L := make([]int, n)
	for nc := lo; nc < hi; nc++ {
		var cur []float32
		if g.direct {
			cur = xd[nc*inPlane : (nc+1)*inPlane]
		} else {
			padInto(padded, dims, rowMajor(dims), xd[nc*inPlane:], ax)
			cur = padded
		}
		copy(L, dims)
		total := size
		// The last axis: windows along the rows, then every s-th column.
		switch a := last; {
		case a.k == 2 && a.s == 2 && a.d == 1 && L[n-1]%2 == 0:
			// Both in one pass: with its two rows the same row, the 2x2
			// vector pool is max(r[2j], r[2j+1]), Max's order.
			next := other(cur)
			vec.Max2x2Stride2Rows(next, 0, cur, 0, 1, total/2)
			cur, L[n-1], total = next, L[n-1]/2, total/2
		default:
			if a.k > 1 {
				next := other(cur)
				maxWindowsFrom(next, cur[:total], a.k, a.d)
				cur = next
			}
			if a.s == 1 {
				break
			}
			next := other(cur)
			rows := total / L[n-1]
			if L[n-1]%a.s == 0 {
				w := L[n-1] / a.s
				vec.Strided(next[:(rows-1)*w+a.out], cur, a.s)
				L[n-1] = w
			} else {
				for r := 0; r < rows; r++ {
					vec.Strided(next[r*a.out:(r+1)*a.out], cur[r*L[n-1]:], a.s)
				}
				L[n-1] = a.out
			}
			cur, total = next, rows*L[n-1]
		}
		// The axes before, last to first: windows of rows (blocks of rows,
		// ...), then every s-th of them, but for the first axis, which the
		// copy out subsamples.
		for j := n - 2; j >= 0; j-- {
			a := ax[j]
			step := prodFrom(L, j+1) // floats per index of axis j
			if a.k > 1 {
				next := other(cur)
				maxWindowsFrom(next[:total], cur[:total], a.k, a.d*step)
				cur = next
			}
			if a.s == 1 || j == 0 {
				continue
			}
			next := other(cur)
			blocks := prodTo(L, j)
			for b := 0; b < blocks; b++ {
				mustCopyRows(next[b*a.out*step:], step, cur[b*L[j]*step:], a.s*step, a.out, step)
			}
			cur, L[j] = next, a.out
			total = blocks * a.out * step
		}
		// Out: the output rows of each block, every s-th along the first axis.
		dst := od[nc*outPlane : (nc+1)*outPlane]
		if n == 1 {
			copy(dst, cur[:last.out])
			continue
		}
		stL := rowMajor(L)
		sigma0 := 1
		if ax[0].s > 1 {
			sigma0 = ax[0].s
		}
		rowStride := stL[n-2]
		if n == 2 {
			rowStride *= sigma0
		}
		outer := make([]int, n-2)
		for j := range outer {
			outer[j] = ax[j].out
		}
		at := 0
		eachIndex(outer, func(idx []int) {
			base := 0
			for j, o := range idx {
				if j == 0 {
					o *= sigma0
				}
				base += o * stL[j]
			}
			mustCopyRows(dst[at:], last.out, cur[base:], rowStride, ax[n-2].out, last.out)
			at += ax[n-2].out * last.out
		})
	}
}

// prodTo is the product of dims[:j]; prodFrom that of dims[j:].
func prodTo(dims []int, j int) int {
	p := 1
	for _, d := range dims[:j] {
		p *= d
	}
	return p
}

func prodFrom(dims []int, j int) int {
	p := 1
	for _, d := range dims[j:] {
		p *= d
	}
	return p
}
