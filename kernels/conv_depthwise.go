package kernels

import (
	"math"
	"sync/atomic"

	"github.com/onnxq/onnxq/kernels/vec"
)

// depthwise runs a convolution with one input and one output channel per group
// directly: on small maps (blockedFits) 8 channels at a time, channels in the
// lanes of a vector (depthwiseC8); otherwise channel by channel, over a
// zero-padded copy of the channel's plane (depthwiseRows) for column strides 1
// and 2, over phase planes (depthwisePlanes) for larger ones. All give the
// same bits. The fused epilogue (prog bound as epi, or nil) runs on each
// channel while it is in cache; when it is BatchNormalization and Clip or
// Relu (MobileNet's blocks, given per channel as eps), inside the kernel, on
// the sums before they are stored. cache (nil when the weights or bias are
// not constant) keeps depthwiseC8's blocked weights from run to run.
func depthwise(ctx *Context, g convGeom, n, channels int, x, w, bias, out []float32, prog *ewProgram, epi *ewRun, eps []vec.Epilogue, cache *atomic.Pointer[depthwiseParams], rowsCache *atomic.Pointer[depthwiseRows]) {
	if depthwisePath == dwBlocked || depthwisePath == dwAuto && blockedFits(g) {
		var pb *depthwiseParams
		if cache != nil {
			pb = cache.Load()
		}
		if pb == nil || pb.geo != g || pb.channels != channels {
			pb = nil
			// The map holds every input position and tap by construction,
			// so the rows path below is never the fallback in practice.
			if d, err := newDepthwiseMap(g); err == nil {
				pb = newDepthwiseParams(d, g, channels, w, bias, eps)
				if cache != nil {
					cache.Store(pb)
				}
			}
		}
		if pb != nil {
			depthwiseC8(ctx, pb, g, n, channels, x, out, prog, epi, eps)
			return
		}
	}
	plane := g.h * g.w
	oplane := g.oh * g.ow
	taps := g.kh * g.kw
	none := vec.NoEpilogue()
	parallelFor(threadsFor(ctx, n*channels*oplane*taps, 1<<15), n*channels, func(lo, hi int) {
		var regs [][]float32
		if epi != nil {
			regs = prog.registers()
		}
		var rows *depthwiseRows
		var planes *depthwisePlanes
		if g.sw <= 2 && depthwisePath != dwPhases {
			// The plan of a geometry's rows is the same every call: kept
			// (rowsCache, when not nil), each goroutine taking a copy for
			// its own buffers instead of planning again (garbage per call).
			var tmpl *depthwiseRows
			if rowsCache != nil {
				tmpl = rowsCache.Load()
			}
			if tmpl == nil || tmpl.geo != g {
				tmpl = newDepthwiseRows(g)
				if rowsCache != nil {
					rowsCache.Store(tmpl)
				}
			}
			r := *tmpl
			if len(r.taps) < taps {
				r.w = make([]float32, len(r.taps)) // this goroutine's, for run to fill
			}
			rows = &r
			// From the session's pool (no garbage per call); the padding
			// must start out zero.
			rows.padded = ctx.Scratch(rows.size)
			clear(rows.padded)
			defer ctx.Release(rows.padded)
		} else {
			planes = newDepthwisePlanes(g)
		}
		for nc := lo; nc < hi; nc++ {
			ch := nc % channels
			bv := float32(0)
			if bias != nil {
				bv = bias[ch]
			}
			src, wk, dst := x[nc*plane:(nc+1)*plane], w[ch*taps:(ch+1)*taps], out[nc*oplane:(nc+1)*oplane]
			if nc+1 < hi && rows != nil {
				// The next channels up to hi are this goroutine's, written
				// after this one: TapRows may run its stores on into them
				// (maps narrower than 8), never past hi, whose channels
				// another goroutine may already have written.
				dst = out[nc*oplane : min(hi*oplane, (nc+1)*oplane+8)]
			}
			if rows != nil && eps != nil {
				rows.run(g, src, wk, bv, eps[ch], dst)
				continue
			}
			if rows != nil {
				rows.run(g, src, wk, bv, none, dst)
			} else {
				planes.run(g, src, wk, bv, dst)
			}
			if epi != nil {
				epi.span(regs, out, out, nc*oplane, (nc+1)*oplane)
			}
		}
	})
}

// depthwisePath picks the depthwise kernel, for the tests and benchmarks that
// compare them: dwAuto lets the geometry decide (blockedFits), the
// others force one path (dwRows still takes the phase planes above
// column stride 2).
var depthwisePath = dwAuto

const (
	dwAuto = iota
	dwRows
	dwPhases
	dwBlocked
)

// blockedFits reports whether a depthwise convolution goes 8 channels at a
// time (depthwiseC8): when its padded map of 8-channel vectors fits in L1, or
// in L2 where the multiply-adds per input position pay for the interleave
// (5x5 kernels) or the padded rows path shuffles every tap (stride 2 across
// and down). One thread, BN and Relu6, against the rows path: MobileNetV2's
// 3x3 layers 7x7 0.45 of its time, 14x14 0.70, 14x14 stride 2 0.46, 28x28
// 0.91, 28x28 stride 2 0.63, 56x56 stride 2 0.88; PaddleOCR's 5x5 layers
// 0.53-0.90 (40x40 stride 1 and 12x80: 0.89-0.90), 3x3 on 6x96 0.88. Left
// on the rows path: 56x56 1.15, 112x112 1.03-1.07, 80x80 stride 2 1.00,
// 12x160 stride (1, 2) 1.09, 12x96 stride (2, 1) 0.95.
func blockedFits(g convGeom) bool {
	hp := max(g.pt+g.h, (g.oh-1)*g.sh+(g.kh-1)*g.dh+1)
	wp := max(g.pl+g.w, (g.ow-1)*g.sw+(g.kw-1)*g.dw+1)
	size := 8 * hp * wp
	return size <= depthwiseMapFloats || size <= 4*depthwiseMapFloats && (g.kh*g.kw >= 25 || g.sh > 1 && g.sw > 1)
}

// depthwiseMapFloats is the largest map of depthwiseC8's that stays in L1 (32 KiB).
const depthwiseMapFloats = 8192

// depthwiseC8 runs a depthwise convolution 8 channels at a time, channels in
// the lanes of a vector: each block's planes are interleaved into a
// zero-padded map of 8-channel vectors (vec.C8Taps), and every output
// position is then its taps' vector multiply-adds, whatever the map's width,
// stride or dilation, with no per-channel setup. The sums come back
// channel by channel through a transpose, BatchNormalization and
// Clip/Relu (eps) applied on the way. Threads take whole blocks, so no store
// reaches another thread's channels.
func depthwiseC8(ctx *Context, pb *depthwiseParams, g convGeom, n, channels int, x, out []float32, prog *ewProgram, epi *ewRun, eps []vec.Epilogue) {
	oplane := g.oh * g.ow
	blocks := (channels + 7) / 8
	nt := len(pb.m.taps)
	threads := threadsFor(ctx, n*channels*oplane*nt, 1<<15)
	if threads <= 1 { // no closure for the pool: garbage on every call
		depthwiseC8Blocks(ctx, pb, g, channels, x, out, prog, epi, eps, 0, n*blocks)
		return
	}
	parallelFor(threads, n*blocks, func(lo, hi int) {
		depthwiseC8Blocks(ctx, pb, g, channels, x, out, prog, epi, eps, lo, hi)
	})
}

// depthwiseC8Blocks is depthwiseC8 for its blocks [lo, hi) (images x
// blocks of 8 channels).
func depthwiseC8Blocks(ctx *Context, pb *depthwiseParams, g convGeom, channels int, x, out []float32, prog *ewProgram, epi *ewRun, eps []vec.Epilogue, lo, hi int) {
	plane, oplane := g.h*g.w, g.oh*g.ow
	d := pb.m
	blocks := (channels + 7) / 8
	nt := len(d.taps)
	var regs [][]float32
	passes := epi != nil && eps == nil // the epilogue as passes over each block's outputs
	if passes {
		regs = prog.registers()
	}
	// From the session's pool (no garbage per call); the padding must
	// start out zero, and no block writes it. Only the padding is
	// cleared: 2 threads take 8 chunks, each with its own map (107 KiB
	// on a 56x56 map).
	m := ctx.Scratch(8 * d.vecs)
	d.clearPadding(m, g)
	defer ctx.Release(m)
	var chans [8]int
	for b := lo; b < hi; b++ {
		img, blk := b/blocks, b%blocks
		c0 := blk * 8
		nch := min(8, channels-c0)
		for l := range chans {
			// Lanes past the last channel repeat it, and are dropped.
			chans[l] = (img*channels + c0 + min(l, nch-1)) * plane
		}
		// The map, tables and parameters come from g and the tensors'
		// shapes, so neither call can fail here.
		_ = d.t.Interleave(m, x, &chans)
		at := (img*channels + c0) * oplane
		var ep *vec.Epilogue8 // none when the epilogue is passes, or absent
		if pb.ep != nil {
			ep = &pb.ep[blk]
		}
		_ = d.t.Run(out[at:], oplane, m, pb.w[blk*nt*8:(blk+1)*nt*8], pb.bias[blk*8:], ep, nch)
		if passes {
			epi.planes(regs, out, at/oplane, at/oplane+nch, oplane, 0, oplane)
		}
	}
}

// depthwiseParams is depthwiseC8's map for one geometry, and the weights,
// biases and epilogues laid out by blocks of 8 channels (lanes past the last
// channel repeat it). Built once per kernel and geometry when the weights are
// constant.
type depthwiseParams struct {
	geo      convGeom
	channels int
	m        *depthwiseMap
	w        []float32       // per block, per tap of m.taps, 8 weights
	bias     []float32       // per block, 8 biases
	ep       []vec.Epilogue8 // per block, when the epilogue is in the kernel
}

func newDepthwiseParams(m *depthwiseMap, g convGeom, channels int, w, bias []float32, eps []vec.Epilogue) *depthwiseParams {
	blocks := (channels + 7) / 8
	taps, kk := m.taps, g.kh*g.kw
	p := &depthwiseParams{geo: g, channels: channels, m: m, w: make([]float32, blocks*len(taps)*8), bias: make([]float32, blocks*8)}
	if eps != nil {
		p.ep = make([]vec.Epilogue8, blocks)
	}
	for b := range blocks {
		for l := range 8 {
			ch := min(b*8+l, channels-1)
			for i, t := range taps {
				p.w[(b*len(taps)+i)*8+l] = w[ch*kk+t]
			}
			if bias != nil {
				p.bias[b*8+l] = bias[ch]
			}
			if eps != nil {
				p.ep[b].Set(l, eps[ch])
			}
		}
	}
	return p
}

// clearPadding zeroes the positions of m that hold no input: the rows above
// and below the input's, and the columns left and right of it.
func (d *depthwiseMap) clearPadding(m []float32, g convGeom) {
	row := 8 * d.wp
	clear(m[:g.pt*row])
	clear(m[(g.pt+g.h)*row : d.hp*row])
	for y := g.pt; y < g.pt+g.h; y++ {
		clear(m[y*row : y*row+8*g.pl])
		clear(m[y*row+8*(g.pl+g.w) : (y+1)*row])
	}
}

// depthwiseMap is the geometry of depthwiseC8's padded map: hp x wp
// positions, input (y, x) at (y+pt, x+pl), output (oy, ox)'s tap (ki, kj)
// at (oy*sh + ki*dh, ox*sw + kj*dw).
type depthwiseMap struct {
	vecs   int
	hp, wp int
	t      *vec.C8Taps
	taps   []int // the taps that ever meet the input, as indices ki*kw+kj into a channel's weights
}

func newDepthwiseMap(g convGeom) (*depthwiseMap, error) {
	hp := max(g.pt+g.h, (g.oh-1)*g.sh+(g.kh-1)*g.dh+1)
	wp := max(g.pl+g.w, (g.ow-1)*g.sw+(g.kw-1)*g.dw+1)
	d := &depthwiseMap{vecs: hp * wp, hp: hp, wp: wp}
	in := make([]int, g.h*g.w)
	for q := range in {
		in[q] = (q/g.w+g.pt)*wp + q%g.w + g.pl
	}
	base := make([]int, g.oh*g.ow)
	for p := range base {
		base[p] = p/g.ow*g.sh*wp + p%g.ow*g.sw
	}
	var offs []int
	for ki := 0; ki < g.kh; ki++ {
		if lo, hi := validRange(g.oh, g.h, g.sh, ki*g.dh, g.pt); lo >= hi {
			continue // as in newDepthwiseRows: taps that only meet padding are left out
		}
		for kj := 0; kj < g.kw; kj++ {
			if lo, hi := validRange(g.ow, g.w, g.sw, kj*g.dw, g.pl); lo >= hi {
				continue
			}
			offs = append(offs, ki*g.dh*wp+kj*g.dw)
			d.taps = append(d.taps, ki*g.kw+kj)
		}
	}
	t, err := vec.NewC8Taps(d.vecs, in, base, offs)
	if err != nil {
		return nil, err
	}
	d.t = t
	return d, nil
}

// rowEpilogues returns, per channel, the program as a vec.Epilogue when it is
// BatchNormalization, Clip or Relu, or BatchNormalization then one of them,
// applied in place to the convolution's output; nil for any other program.
func (p *ewProgram) rowEpilogues(channels int) []vec.Epilogue {
	if !p.chain() || len(p.ops) == 0 || len(p.ops) > 2 {
		return nil
	}
	ops := p.ops
	var aff *ewOp
	if ops[0].kind == ewAffine {
		aff, ops = &ops[0], ops[1:]
		if len(aff.mul) != channels && len(aff.mul) != 1 {
			return nil
		}
	}
	if len(ops) > 1 {
		return nil
	}
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	if len(ops) == 1 {
		if ops[0].kind != ewUnary || ops[0].bounds == nil {
			return nil
		}
		lo, hi = ops[0].bounds[0], ops[0].bounds[1]
	}
	eps := make([]vec.Epilogue, channels)
	for c := range eps {
		eps[c] = vec.NoEpilogue()
		if aff != nil {
			i := min(c, len(aff.mul)-1) // one value for every channel, or one each
			eps[c].Mul, eps[c].Add = aff.mul[i], aff.add[i]
		}
		eps[c].Lo, eps[c].Hi = lo, hi
	}
	return eps
}

// depthwiseRows computes one depthwise channel from a zero-padded copy of its
// input rows, rs floats a row, so that one vec.TapRows call computes a band
// of output rows, with every tap's sum in registers and the epilogue on the
// way out, straight into the output. A row is the padded input row: tap (ki,
// kj) of output (oy, ox) reads (oy*sh + ki*dh)*rs + ox*sw + kj*dw, with
// TapRows taking every other column at stride 2. On maps at least
// splitWidth wide, a stride-2 row holds the padded row's even columns, then
// its odd ones (wq each, vec.SplitRows) instead: padded column c = 2*ox +
// kj*dw is then at (c%2)*wq + c/2, so the taps read contiguous columns, with
// no shuffle per tap and output vector (MobileNetV2's 112x112 stride-2
// layer: 0.75 of the time; narrower rows are mostly SplitRows' scalar tail,
// 14x14: 1.35). Bands are as many output rows as keep their input rows within
// depthwiseBandFloats, so that TapRows reads them from L1 (MobileNet's
// 112x112 maps: 33 rows at stride 1); a map that fits is one band. Only
// input rows are copied in: the padding columns stay zero from the
// allocation, and rows above or below the input are cleared.
type depthwiseRows struct {
	geo          convGeom // the geometry planned for
	rs, wq, band int
	sx           int       // TapRows' column stride: 1, or 2 on rows not split
	size         int       // floats padded needs
	padded       []float32 // set by the caller, zeroed
	offs         []int     // per tap that reaches the input, where it reads padded for output (0, 0)
	taps         []int     // those taps' indices ki*kw+kj into the channel's weights
	w            []float32 // their weights for the current channel
}

// depthwiseBandFloats bounds a band's padded input rows (24 KiB: the rows
// and the output they make stay in a 32 KiB L1).
const depthwiseBandFloats = 6144

// splitWidth is the narrowest input that stride-2 depthwise splits into
// even and odd columns.
const splitWidth = 48

func newDepthwiseRows(g convGeom) *depthwiseRows {
	wp := max(g.pl+g.w, g.sw*g.ow+(g.kw-1)*g.dw)
	d := &depthwiseRows{geo: g, rs: wp, sx: g.sw}
	split := g.sw == 2 && g.w >= splitWidth
	if split {
		d.wq = (wp + 1) / 2
		d.rs, d.sx = 2*d.wq, 1
	}
	col := func(c int) int { // where padded column c of a row is
		if split {
			return c%2*d.wq + c/2
		}
		return c
	}
	reach := (g.kh-1)*g.dh + 1 // input rows one output row reads
	d.band = min(g.oh, max(4, (depthwiseBandFloats/d.rs-reach)/g.sh+1))
	// TapRows reads sx*max(ow, 8) floats from each output row's start.
	rows := (d.band-1)*g.sh + reach
	d.size = rows * d.rs
	for ki := 0; ki < g.kh; ki++ {
		if lo, hi := validRange(g.oh, g.h, g.sh, ki*g.dh, g.pt); lo >= hi {
			continue // this kernel row only ever meets padding (small maps, large kernels)
		}
		for kj := 0; kj < g.kw; kj++ {
			if lo, hi := validRange(g.ow, g.w, g.sw, kj*g.dw, g.pl); lo >= hi {
				continue
			}
			off := ki*g.dh*d.rs + col(kj*g.dw)
			d.offs = append(d.offs, off)
			d.taps = append(d.taps, ki*g.kw+kj)
			d.size = max(d.size, off+(d.band-1)*g.sh*d.rs+d.sx*max(g.ow, 8))
		}
	}
	return d
}

// run computes one channel; d.w is the caller's scratch for the weights of
// the taps that reach the input, when some only ever meet padding.
func (d *depthwiseRows) run(g convGeom, src, wk []float32, bias float32, ep vec.Epilogue, dst []float32) {
	w := wk
	if len(d.taps) < len(wk) { // some taps only ever meet padding
		w = d.w
		for i, t := range d.taps {
			w[i] = wk[t]
		}
	}
	rs := d.rs
	for oy0 := 0; oy0 < g.oh; oy0 += d.band {
		nb := min(d.band, g.oh-oy0)
		// Band row j holds input row r0+j; rows [lo, hi) are the input's.
		r0 := oy0*g.sh - g.pt
		rows := (nb-1)*g.sh + (g.kh-1)*g.dh + 1
		lo, hi := max(0, -r0), max(0, min(rows, g.h-r0))
		lo = min(lo, hi)
		if d.band < g.oh { // one band: these rows are never written
			clear(d.padded[:lo*rs])
			clear(d.padded[hi*rs : rows*rs])
		}
		// padded holds a band's rows and reaches every tap's last read by
		// construction, so the copies and TapRows cannot fail here.
		if hi > lo {
			in, at := src[(r0+lo)*g.w:], d.padded[lo*rs:]
			if d.wq > 0 {
				// Input column x is padded column pl+x: the even x go to
				// the half of parity pl, the odd x to the other.
				a, b := g.pl%2*d.wq+g.pl/2, (g.pl+1)%2*d.wq+(g.pl+1)/2
				_ = vec.SplitRows(at[a:], at[b:], rs, in, g.w, hi-lo, g.w)
			} else {
				_ = vec.CopyRows(at[g.pl:], rs, in, g.w, hi-lo, g.w)
			}
		}
		_ = vec.TapRows(dst[oy0*g.ow:], d.padded, d.offs, w, bias, nb, g.ow, g.sh*rs, d.sx, ep)
	}
}

// depthwisePlanes computes one depthwise channel, for column strides above 2. The zero-padded input is
// split into sh x sw phase planes (phase (py, px) holds padded rows py, py+sh,
// ... and columns px, px+sw, ...), each wq wide: tap (ki, kj) then reads phase
// (ki*dh%sh, kj*dw%sw) at a fixed offset, for every output (oy, ox) held at
// oy*wq+ox of an accumulator, so all taps add into the accumulator in one pass
// (vec.SumTaps) with the running sums in registers, and strided and narrow
// maps run as vector loops too. The wq-ow extra columns per row are computed
// and dropped.
type depthwisePlanes struct {
	wq, hq int
	phases []float32 // sh*sw planes of hq x wq, zero where the input is padding
	acc    []float32 // (oh-1)*wq + ow
	offs   []int     // per tap that reaches the input, where it reads phases
	taps   []int     // those taps' indices ki*kw+kj into the channel's weights
	w      []float32 // their weights for the current channel
}

func newDepthwisePlanes(g convGeom) *depthwisePlanes {
	wq := g.ow + (g.kw-1)*g.dw/g.sw
	hq := g.oh + (g.kh-1)*g.dh/g.sh
	d := &depthwisePlanes{wq: wq, hq: hq, phases: make([]float32, g.sh*g.sw*hq*wq), acc: make([]float32, (g.oh-1)*wq+g.ow)}
	for ki := 0; ki < g.kh; ki++ {
		oy, py := ki*g.dh/g.sh, ki*g.dh%g.sh
		if lo, hi := validRange(g.oh, g.h, g.sh, ki*g.dh, g.pt); lo >= hi {
			continue // this kernel row only ever meets padding (small maps, large kernels)
		}
		for kj := 0; kj < g.kw; kj++ {
			ox, px := kj*g.dw/g.sw, kj*g.dw%g.sw
			if lo, hi := validRange(g.ow, g.w, g.sw, kj*g.dw, g.pl); lo >= hi {
				continue
			}
			d.offs = append(d.offs, (py*g.sw+px)*hq*wq+oy*wq+ox)
			d.taps = append(d.taps, ki*g.kw+kj)
		}
	}
	d.w = make([]float32, len(d.taps))
	return d
}

func (d *depthwisePlanes) run(g convGeom, src, wk []float32, bias float32, dst []float32) {
	// Only the positions that hold input are written: the padding around them
	// is the same for every channel and stays zero from the allocation.
	fillPhases(g, d.hq, d.wq, src, d.phases, nil)
	// The offsets stay inside phases by construction (hq*wq covers the last
	// tap's reach), so SumTaps cannot fail here.
	for i, t := range d.taps {
		d.w[i] = wk[t]
	}
	_ = vec.SumTaps(d.acc, d.phases, d.offs, d.w, bias)
	for oy := 0; oy < g.oh; oy++ {
		copy(dst[oy*g.ow:(oy+1)*g.ow], d.acc[oy*d.wq:])
	}
}
