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
// fold, so every bit stays, NaN payloads and signed zeros too (see maxND
// for the passes).
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
	st := stridesOf(dims)
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

// prodTo is the product of dims[:j].
func prodTo(dims []int, j int) int {
	p := 1
	for _, d := range dims[:j] {
		p *= d
	}
	return p
}

// maxND takes the maxima of planes [lo, hi) of xd into od (see the comment
// at the top). Leading axes the window leaves as they are (kernel 1, stride
// 1, no padding) count as more planes. The last axis is reduced first, in a
// few flat passes over all the plane's rows at once, from the input where
// no padding reaches its rows (maxRows), else from a copy padded with -Inf:
// at stride 2 with the rows' even and odd columns apart (vec.SplitRows),
// so that each tap is a contiguous run (foldTaps), at other strides with
// the rows whole (maxRows). Then each axis before it, last to first, in
// whole blocks of output rows (foldTaps again): those axes' data is laid
// out by phase, the positions r, r+s, r+2s, ... of each residue r of the
// stride one after another (padding -Inf, written once), so that what a
// tap reads for a block's outputs lies contiguous too.
func maxND(ctx *Context, g *poolNDGeom, xd, od []float32, lo, hi int) {
	ax, ext, mult, raw, split := maxNDPath(g)
	n, m := len(ax), len(ax)-2 // m: the axis before the last (-1 for 1-D)
	w := ax[n-1]
	inPlane, outPlane := 1, 1
	in, nin := make([]int, n), make([]int, n) // nin: how many input positions some window reads
	for j, a := range ax {
		inPlane *= a.in
		outPlane *= a.out
		in[j], nin[j] = a.in, max(0, min(a.in, ext[j]-a.pad))
	}
	// The rows the last axis reads (srcW floats each) and the ones it gives (outW).
	srcW, outW := w.in, w.in/w.s
	switch {
	case split: // each phase's columns in rows of outW
		outW = (ext[n-1] + 1) / 2
		srcW = 2 * outW
	case !raw:
		srcW = (ext[n-1] + w.s - 1) / w.s * w.s
		outW = srcW / w.s
	}
	// Axis j <= m: a block for each input position of the axes before (those
	// no window reads left unused), each of s x q[j] slabs of slab[j] floats.
	q, slab, size := make([]int, n), make([]int, n), make([]int, n)
	alias := false // maxRows' rows from the input are axis m's layout as they are
	for j := m; j >= 0; j-- {
		a := ax[j]
		q[j], slab[j] = (ext[j]+a.s-1)/a.s, outW
		if j < m {
			slab[j] = ax[j+1].out * slab[j+1]
		}
		if j == m && raw && a.s == 1 && a.pad == 0 && ext[j] <= a.in {
			alias, q[j] = true, a.in
		}
		size[j] = prodTo(in, j) * a.s * q[j] * slab[j]
	}
	rowsIn, padRows := inPlane/w.in, 1 // rows of the input and of axis m's layout
	if m >= 0 {
		padRows = size[m] / outW
	}
	final := outW // the folded plane, outW floats a row
	if m >= 0 {
		final = ax[0].out * slab[0]
	}
	direct := m >= 0 && outW == w.out // the folded plane is the output
	// One scratch buffer: the parts padded with -Inf first (filled once),
	// then the rest: the last axis' output where it is not yet a layout,
	// maxRows' buffer for windows at every position, and the folded plane.
	padSize, tSize, tmpSize := 0, 0, 0
	if !raw {
		padSize = padRows * srcW
	}
	if raw && !alias && m >= 0 {
		tSize = rowsIn * outW
	}
	if !split && maxRowsWindows(w) {
		tmpSize = max(rowsIn, padRows) * srcW
	}
	inf := padSize
	for j := 0; j <= m; j++ {
		if !(j == m && alias) {
			inf += size[j]
		}
	}
	all := inf + tSize + tmpSize
	if alias {
		all += size[m]
	}
	if !direct {
		all += final
	}
	buf := ctx.Scratch(all)
	defer ctx.Release(buf)
	fillSlice(buf[:inf], float32(math.Inf(-1)))
	take := func(k int) []float32 {
		b := buf[:k:k]
		buf = buf[k:]
		return b
	}
	padded := take(padSize)
	lay := make([][]float32, n)
	for j := 0; j <= m; j++ {
		if !(j == m && alias) {
			lay[j] = take(size[j])
		}
	}
	if alias {
		lay[m] = take(size[m])
	}
	tRows, tmp := take(tSize), take(tmpSize)
	var fin []float32
	if !direct {
		fin = take(final)
	}
	// The padded copy: each input row's columns from the padding on, or at
	// stride 2 its even and odd ones into the planes of the two phases
	// (padded column p in plane p%2 at p/2).
	var evenAt, oddAt []float32 // where input column 0 and 1 go, in a row
	if split {
		e, o := padded[w.pad%2*padRows*outW+w.pad/2:], padded[(w.pad+1)%2*padRows*outW+(w.pad+1)/2:]
		evenAt, oddAt = e, o
	}
	copyRows := func(slot int, src []float32, srcRow, count int) {
		if !split {
			mustCopyRows(padded[slot*srcW+w.pad:], srcW, src, srcRow, count, nin[n-1])
			return
		}
		if err := vec.SplitRows(evenAt[slot*outW:], oddAt[slot*outW:], outW, src, srcRow, count, nin[n-1]); err != nil {
			panic(err)
		}
	}
	// slots calls f for each phase of axis j's input positions in block b:
	// its first position, its slot in the layout and how many (s apart in
	// the input, one after another in the layout).
	slots := func(j, b int, f func(i0, slot, count int)) {
		a := ax[j]
		for r := 0; r < a.s; r++ {
			i0 := ((r-a.pad)%a.s + a.s) % a.s
			if i0 < nin[j] {
				f(i0, (b*a.s+r)*q[j]+(i0+a.pad)/a.s, (nin[j]-i0+a.s-1)/a.s)
			}
		}
	}
	for nc := lo * mult; nc < hi*mult; nc++ {
		x := xd[nc*inPlane : (nc+1)*inPlane]
		dst := od[nc*outPlane : (nc+1)*outPlane]
		// The last axis, into axis m's layout (the folded plane for 1-D).
		rows := fin
		if m >= 0 {
			rows = lay[m]
		}
		switch {
		case raw && (alias || m < 0):
			maxRows(rows, x, tmp, w, (rowsIn-1)*outW+w.out)
		case raw:
			maxRows(tRows, x, tmp, w, (rowsIn-1)*outW+w.out)
			eachIndex(nin[:m], func(idx []int) {
				b := flatIndex(idx, in)
				slots(m, b, func(i0, slot, count int) {
					mustCopyRows(rows[slot*outW:], outW, tRows[(b*in[m]+i0)*outW:], ax[m].s*outW, count, outW)
				})
			})
		default:
			if m < 0 {
				copyRows(0, x, w.in, 1)
			} else {
				eachIndex(nin[:m], func(idx []int) {
					b := flatIndex(idx, in)
					slots(m, b, func(i0, slot, count int) {
						copyRows(slot, x[(b*in[m]+i0)*w.in:], ax[m].s*w.in, count)
					})
				})
			}
			if split {
				foldTaps(rows, padded, w, padRows*outW, 1, (padRows-1)*outW+w.out)
			} else {
				maxRows(rows, padded, tmp, w, (padRows-1)*outW+w.out)
			}
		}
		if m < 0 {
			copy(dst, fin[:w.out])
			continue
		}
		// The axes before, last to first: each block's outputs into their
		// slot in the next layout (the folded plane for axis 0).
		for j := m; j >= 0; j-- {
			a := ax[j]
			bl := a.s * q[j] * slab[j]
			eachIndex(nin[:j], func(idx []int) {
				var out []float32
				switch {
				case j > 0:
					p := ax[j-1]
					i := idx[j-1] + p.pad
					slot := (flatIndex(idx[:j-1], in)*p.s+i%p.s)*q[j-1] + i/p.s
					out = lay[j-1][slot*slab[j-1]:]
				case direct:
					out = dst
				default:
					out = fin
				}
				b := flatIndex(idx, in)
				foldTaps(out, lay[j][b*bl:(b+1)*bl], a, q[j], slab[j], a.out*slab[j])
			})
		}
		if !direct {
			mustCopyRows(dst, w.out, fin, outW, final/outW, w.out)
		}
	}
}

// maxNDPath is how maxND goes: the axes after the leading ones it takes as
// more planes (mult of them a plane), and whether the last axis is reduced
// from the input as it lies (raw) or from a padded copy, by phase (split)
// or in whole rows.
func maxNDPath(g *poolNDGeom) (ax []poolNDAxis, ext []int, mult int, raw, split bool) {
	ax, ext, mult = g.ax, g.ext, 1
	for len(ax) > 1 && ax[0].k == 1 && ax[0].s == 1 && ax[0].pad == 0 && ax[0].out == ax[0].in {
		mult *= ax[0].in
		ax, ext = ax[1:], ext[1:]
	}
	w, e := ax[len(ax)-1], ext[len(ax)-1]
	raw = !noRawRows && w.pad == 0 && e <= w.in && w.in%w.s == 0
	return ax, ext, mult, raw, !raw && w.s == 2
}

// maxRowsWindows reports whether maxRows takes a's windows at every
// position before it subsamples them (in its tmp buffer).
func maxRowsWindows(a poolNDAxis) bool {
	pair := a.s == 2 && a.d == 1 && (a.k == 2 || a.k == 3)
	return a.k > 1 && a.s > 1 && !pair
}

// maxRows sets dst[j] to the fold of a's window at src[j*s], its taps in
// order, for j < n: one flat pass over rows laid end to end, whose windows
// that run past a row's end land only in outputs nothing reads. 2- and
// 3-wide windows at stride 2 take the 2x2 and 3x3 vector pools with both or
// all three rows the same row (the max of x and x is x, bit for bit):
// max(r[2j], r[2j+1]) and max(max(r[2j], r[2j+1]), r[2j+2]), Max's order.
// Other windows go through maxWindows at every position (at stride 1 into
// dst itself, which must hold the windows' reach, n + (k-1)*d floats, as
// the callers' rows do; else into tmp), then every s-th.
func maxRows(dst, src, tmp []float32, a poolNDAxis, n int) {
	reach := (n-1)*a.s + (a.k-1)*a.d + 1 // the floats the windows read
	switch {
	case n <= 0:
	case a.k == 2 && a.s == 2 && a.d == 1:
		vec.Max2x2Stride2Rows(dst, 0, src, 0, 1, n)
	case a.k == 3 && a.s == 2 && a.d == 1:
		vec.Max3Stride2Rows(dst, 0, src, 0, 1, n)
	case a.k == 1:
		vec.Strided(dst[:n], src, a.s)
	case a.s == 1:
		maxWindowsFrom(dst[:reach], src[:reach], a.k, a.d)
	default:
		vec.Strided(dst[:n], maxWindowsFrom(tmp[:reach], src[:reach], a.k, a.d), a.s)
	}
}

// foldTaps sets dst[:n] to the fold of a's taps over data laid out by
// phase: s runs of q slabs of slab floats, phase r holding positions r, r+s,
// r+2s, ...; tap t reads phase t*d mod s from slab t*d / s on, so each tap
// is one vec.Max over contiguous floats, in the taps' order.
func foldTaps(dst, src []float32, a poolNDAxis, q, slab, n int) {
	tap := func(t int) []float32 {
		o := ((t*a.d)%a.s*q + t*a.d/a.s) * slab
		return src[o : o+n]
	}
	dst = dst[:n]
	if a.k == 1 {
		copy(dst, tap(0))
		return
	}
	vec.Max(dst, tap(0), tap(1))
	for t := 2; t < a.k; t++ {
		vec.Max(dst, dst, tap(t))
	}
}

// flatIndex is the row-major index of idx among dims[:len(idx)].
func flatIndex(idx, dims []int) int {
	f := 0
	for j, i := range idx {
		f = f*dims[j] + i
	}
	return f
}

// noRawRows makes maxND copy every input to a padded plane, for the tests.
var noRawRows = false
