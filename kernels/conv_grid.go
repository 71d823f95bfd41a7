package kernels

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// The grid path of Conv: the packed weights multiply the input where it lies,
// read through per-tap offsets (gemm.Grid), instead of an im2col matrix that
// the GEMM then packs again. The input is laid out once as zero-padded phase
// planes (as depthwisePlanes does), so every tap (ci, ki, kj) reads its
// output row's inputs contiguously at a fixed offset, for any stride and
// dilation.
//
// The GEMM writes the output directly: its 16- or 24-wide panels are
// consecutive output pixels, and the offsets kernels (6x16, and 4x24 where
// 16 or 32 output channels would leave 6-row tiles part empty) read each
// 8-wide group where it lies, so the rows computed are a multiple of 8 wide
// (the groups then never cross an input row). Other widths compute the next
// multiple of 8 into scratch, the extra columns reading zeros, and copy the
// rows out without them.
//
// Measured against im2col (BenchmarkConvLayerGridVsIm2col, thread CPU time):
// CIFAR-sized 3x3 convolutions take 0.60-0.77 of the time, a 3x3 stride-2
// stem on 224x224 0.66-0.97, SqueezeNet's 55-wide 3x3 layer (56 computed)
// 0.74-0.85, its 111-wide stem 0.98-0.99. Widths that waste more than 1/16
// of the columns stay on im2col's path (13x13: 1.18x), and so did going row
// by row (the 111-wide stem: 1.01x).
type gridLayout struct {
	geo    convGeom
	cg     int
	cols   int // output columns computed per row: ow, or ow rounded up to 8
	hq, wq int
	cs     int                        // floats per input channel in the phase buffer
	offs   []int                      // per tap (ci, ki, kj): where it starts, relative to the group's first channel
	phases []bool                     // which of the sh*sw phases a tap reads
	stem   atomic.Pointer[stemLayout] // the stem path's strips, made on first use
	// stemPool is the stem path's strips for a fused MaxPool (runStemPool).
	stemPool atomic.Pointer[stemLayout]
	plans    phasePlans
	// The threads' state of runGrid and runGridChannels, kept between
	// calls (nil while a call has it).
	bandWork atomic.Pointer[gridBandsWork]
	chanWork atomic.Pointer[gridChannelsWork]
}

func newGridLayout(g convGeom, cg int) *gridLayout {
	cols := roundUp8(g.ow)
	l := &gridLayout{
		geo: g, cg: cg, cols: cols,
		hq: g.oh + (g.kh-1)*g.dh/g.sh,
		wq: cols + (g.kw-1)*g.dw/g.sw, // the extra columns read zeros
	}
	l.cs, l.phases, l.offs = phaseTaps(g, cg, l.hq, l.wq)
	return l
}

// phaseTaps lays out cg input channels of phase planes rows x wq for the
// taps of g: floats per channel cs, the phases a tap reads, and each tap's
// (ci, ki, kj) offset from the first channel. cs is an odd number of cache
// lines: strides of a multiple of 512 bytes would put the taps' rows of a
// panel into a few L1 sets, which would then evict each other while the
// panel is reused. It also leaves gridTail floats after the planes: a
// strip's last panel of output columns runs on past the last pixel (its
// extra columns dropped), and its taps in the last channel read that far
// past the planes; without room there the panel went through a scalar
// gather (the last of two row bands of a 16-channel 32x32 layer took 33 us
// against the first's 29).
func phaseTaps(g convGeom, cg, rows, wq int) (cs int, phases []bool, offs []int) {
	plane := rows * wq
	cs = (g.sh*g.sw*plane + gridTail + 15) / 16 * 16
	if cs/16%2 == 0 {
		cs += 16
	}
	phases = make([]bool, g.sh*g.sw)
	offs = make([]int, 0, cg*g.kh*g.kw)
	for ci := 0; ci < cg; ci++ {
		for ki := 0; ki < g.kh; ki++ {
			for kj := 0; kj < g.kw; kj++ {
				q := (ki*g.dh%g.sh)*g.sw + kj*g.dw%g.sw
				phases[q] = true
				offs = append(offs, ci*cs+q*plane+(ki*g.dh/g.sh)*wq+kj*g.dw/g.sw)
			}
		}
	}
	return cs, phases, offs
}

// fill writes the phase planes of the c input channels in src to dst, which
// it zeroes first (the padding).
func (l *gridLayout) fill(ctx *Context, g convGeom, c int, src, dst []float32) {
	plane := g.h * g.w
	pcs := l.plans.of(g, l.hq, l.wq, l.hq*l.wq, l.phases, 0, l.hq, 0)
	// On one thread without a closure for parallelFor, which would be
	// garbage every call (see Session.vals).
	if threads := threadsFor(ctx, c*l.cs, 1<<16); threads > 1 {
		parallelFor(threads, c, func(lo, hi int) { l.fillChannels(lo, hi, plane, pcs, src, dst) })
	} else {
		l.fillChannels(0, c, plane, pcs, src, dst)
	}
}

// fillChannels is fill on channels [lo, hi).
func (l *gridLayout) fillChannels(lo, hi, plane int, pcs []phaseCopy, src, dst []float32) {
	for ci := lo; ci < hi; ci++ {
		d := dst[ci*l.cs : (ci+1)*l.cs]
		clear(d)
		for k := range pcs {
			pcs[k].apply(src[ci*plane:(ci+1)*plane], d)
		}
	}
}

// fillRows writes rows [i0, i1) of the phase planes of the cg channels of
// one group in src to dst, zeroing them first, every phase's (as fill
// does); last also zeroes the rest of each channel's slot past the planes.
func (l *gridLayout) fillRows(g convGeom, src, dst []float32, i0, i1 int, last bool) {
	plane, qplane := g.h*g.w, l.hq*l.wq
	pcs := l.plans.of(g, l.hq, l.wq, qplane, l.phases, i0, i1, 0)
	for ci := 0; ci < l.cg; ci++ {
		d := dst[ci*l.cs : (ci+1)*l.cs]
		for q := range l.phases {
			clear(d[q*qplane+i0*l.wq : q*qplane+i1*l.wq])
		}
		if last {
			clear(d[len(l.phases)*qplane:])
		}
		for k := range pcs {
			pcs[k].apply(src[ci*plane:(ci+1)*plane], d)
		}
	}
}

// gridFits reports whether the grid path computes this convolution whole:
// not pointwise, and output widths a multiple of 8 or within 1/16 of one
// (55, 111), whose extra column is dropped. Other widths (7, 12, 13, 27)
// run on the grid too (pathOf), computing up to 7 columns a row for
// nothing, unless the co-tiles take them (coFits: no padding columns).
// Against im2col, paired at one thread (session 34), 3x3 layers of 8-24
// output channels on 9x9 to 97x97 maps took 0.43-0.76 of the time (DenseNet's
// 64 -> 16 on 12x12 22 us against 50, in the whole model 25 against 95),
// on 2x2 and 3x3 maps 0.2-0.4 and a 7x7 stride 2 0.23: im2col copies a
// few floats per tap and row, which cost more than the padding columns'
// multiply-adds.
func gridFits(g convGeom) bool {
	return !isPointwise(g) && 16*(roundUp8(g.ow)-g.ow) <= g.ow
}

func roundUp8(n int) int { return (n + 7) &^ 7 }

// runGrid computes the convolution of Run, laid out by l, with the packed
// weights of each group (and their 4-row packing, or nil, taken where it
// computes fewer padding tiles), the epilogue prog bound as epi (or nil), and
// the shortcut skip that res adds after it (or nil).
func runGrid(ctx *Context, l *gridLayout, n, g, mg int, xd, od, bias []float32, packs, narrow []*gemm.PackedA, prog *ewProgram, epi *ewRun, eps []vec.Epilogue, res *residual, skip []float32, reluStores bool) {
	reluStored := reluStores && bias != nil && !noReluStores
	geo, cg := l.geo, l.cg
	c := g * cg
	m := g * mg
	oh, ow := geo.oh, geo.ow
	spatialN := oh * ow
	kk := cg * geo.kh * geo.kw
	bands := min(oh, threadsFor(ctx, mg*kk*spatialN, minBandMACs))
	bandRows := (oh + bands - 1) / bands
	bands = (oh + bandRows - 1) / bandRows
	workers := min(n*g*bands, threadsFor(ctx, n*m*kk*spatialN, minBandMACs))
	if workers > 1 && n*g == 1 && gridChannelsFit(l, mg, workers) {
		runGridChannels(ctx, l, workers, xd, od, bias, packs[0], narrow, prog, epi, res, skip)
		return
	}
	// The phase rows a band reads run past its own by halo: the rows of its
	// kernel's last tap.
	halo := (geo.kh - 1) * geo.dh / geo.sh
	slot := n * c * l.cs
	// own: each band lays out the phase rows it reads (its own and the
	// halo) into its own copy of the buffer, in the same parallel region as
	// its GEMM, so a convolution is one region instead of two with a
	// barrier between them (with the shortcut fusion of fuse_residual.go,
	// ResNet-20 at 2 threads went from 1.01 to 0.89 ms). The halo
	// rows are laid out twice; copies are kept to small inputs
	// (ownBufFloats).
	own := workers > 1 && bands*slot <= ownBufFloats
	copies := 1
	if own {
		copies = bands
	}
	bufs := ctx.seatScratch(copies, slot)
	defer ctx.Release(bufs.buf)
	buf := bufs.at(0)
	plane := geo.h * geo.w
	if workers == 1 {
		l.fill(ctx, geo, n*c, xd, buf)
	} else if !own {
		// Each band lays out the phase rows it starts on, split as the
		// bands are: the layout no longer runs on one thread while the
		// other waits, and a thread mostly lays out the input rows it
		// wrote as a band of the layer before and then reads. Estimated
		// 2-thread time (parallel.Account, paired runs): ResNet-20 0.97x,
		// PaddleOCR det 0.98x and cls 0.98x, ResNet-56 unchanged.
		parallel.For(workers, n*g*bands, func(i int) {
			t, gi, b := i%bands, i/bands%g, i/(bands*g)
			i1 := (t + 1) * bandRows
			if t == bands-1 {
				i1 = l.hq
			}
			l.fillRows(geo, xd[(b*c+gi*cg)*plane:], buf[(b*c+gi*cg)*l.cs:], t*bandRows, i1, t == bands-1)
		})
	}
	// Strips of output rows of about 256 KiB, so that the epilogue finds them
	// in cache; an even number of rows keeps the panels of 8-wide outputs
	// whole.
	cols := l.cols
	stripRows := max(1, min(bandRows, (1<<16)/max(1, mg*cols)))
	if stripRows > 1 && cols%16 != 0 {
		stripRows &^= 1
	}
	// With padded rows (cols > ow), a strip's output goes to scratch first,
	// its rows cols apart, and is copied out without the extra columns.
	// Bands on more than one thread take the same route when the epilogue
	// is one per channel (eps: BatchNormalization's affine, a Relu or
	// Clip), which then runs on the strip in the thread's own scratch: a
	// band's rows of every output plane are 2 KiB stretches between the
	// other thread's (16 x 32 x 32), and a pass over them pulls the
	// neighbours' lines across cores through the prefetchers
	// (BenchmarkOwnership). The GEMM's stores hide that; the epilogue's
	// pass did not: 4.5 us a band of ResNet-20's first stage at 2 threads,
	// against 1.0 us for a half layer at 1.
	// A fused shortcut Add goes on the strip too when its rows are the
	// output's (no padding columns).
	epiWide := workers > 1 && epi != nil && !reluStored && eps != nil && (res == nil || cols == ow) && !noEpiWide
	var wides seatRegions
	if cols != ow || epiWide {
		wides = ctx.seatScratch(workers, mg*stripRows*cols)
		defer ctx.Release(wides.buf)
	}
	gb := gridBands{l: l, c: c, cg: cg, m: m, mg: mg, ow: ow, spatialN: spatialN, cols: cols, stripRows: stripRows,
		od: od, bias: bias, skip: skip, packs: packs, narrow: narrow, prog: prog, epi: epi, eps: eps, res: res,
		reluStored: reluStored, epiWide: epiWide}
	if workers == 1 {
		for b := 0; b < n; b++ {
			for gi := 0; gi < g; gi++ {
				for r0 := 0; r0 < oh; r0 += bandRows {
					gb.band(b, gi, r0, min(oh, r0+bandRows), ctx.Threads, wides.at(0), buf)
				}
			}
		}
		return
	}
	w := l.bandWork.Swap(nil) // nil while another call has it: then a new one
	if w == nil {
		w = &gridBandsWork{}
		w.item = w.run
	}
	*w = gridBandsWork{item: w.item, gridBands: gb, xd: xd, bufs: bufs, wides: wides,
		g: g, oh: oh, bands: bands, bandRows: bandRows, halo: halo, own: own}
	parallel.ForSeat(workers, n*g*bands, w.item)
	*w = gridBandsWork{item: w.item} // keeps nothing of this call alive
	l.bandWork.Store(w)
}

// gridBandsWork is what runGrid's threads compute with: the bands' state
// and how the items map to bands. The layout keeps one between calls, with
// its run method bound once: a closure for the threads would be garbage
// every call (see Session.vals).
type gridBandsWork struct {
	gridBands
	item                   func(seat, i int)
	xd                     []float32
	bufs                   seatRegions // the phase buffer; with own, band t's copy is bufs.at(t)
	wides                  seatRegions // the seats' strips
	g, oh, bands, bandRows int
	halo                   int
	own                    bool
}

// run runs item i, band i%bands of group i/bands%g of image i/(bands*g),
// on seat's share of the scratch; with own, it first lays out the phase
// rows the band reads in its own copy of the buffer.
func (w *gridBandsWork) run(seat, i int) {
	l, geo, c, cg, bands, bandRows := w.l, w.l.geo, w.c, w.cg, w.bands, w.bandRows
	t, gi, b := i%bands, i/bands%w.g, i/(bands*w.g)
	wide := w.wides.at(seat)
	buf := w.bufs.at(0)
	if w.own {
		buf = w.bufs.at(t)
		i1 := min(l.hq, (t+1)*bandRows+w.halo)
		l.fillRows(geo, w.xd[(b*c+gi*cg)*geo.h*geo.w:], buf[(b*c+gi*cg)*l.cs:], t*bandRows, i1, i1 == l.hq)
	}
	w.gridBands.band(b, gi, t*bandRows, min(w.oh, (t+1)*bandRows), 1, wide, buf)
}

// gridBands is what runGrid's bands compute with: the layer's shapes, its
// packed weights and its epilogue. A method on it rather than a closure: a
// closure that the threads' loop captures is garbage every call, also when
// one thread runs every band (see Session.vals).
type gridBands struct {
	l                   *gridLayout
	c, cg, m, mg        int
	ow, spatialN        int
	cols, stripRows     int
	od, bias, skip      []float32
	packs, narrow       []*gemm.PackedA
	prog                *ewProgram
	epi                 *ewRun
	eps                 []vec.Epilogue
	res                 *residual
	reluStored, epiWide bool
}

// band computes output rows [r0, r1) of group gi of image b from the phase
// rows in buf, on threads, through wide when it is not nil.
func (gb *gridBands) band(b, gi, r0, r1 int, threads int, wide, buf []float32) {
	l, c, cg, m, mg := gb.l, gb.c, gb.cg, gb.m, gb.mg
	ow, spatialN, cols, stripRows := gb.ow, gb.spatialN, gb.cols, gb.stripRows
	od, bias, skip, packs, narrow := gb.od, gb.bias, gb.skip, gb.packs, gb.narrow
	prog, epi, eps, res := gb.prog, gb.epi, gb.eps, gb.res
	reluStored, epiWide := gb.reluStored, gb.epiWide
	data := buf[(b*c+gi*cg)*l.cs:]
	base := (b*m + gi*mg) * spatialN
	og := od[base : base+mg*spatialN]
	var regs [][]float32
	if epi != nil {
		regs = prog.registers()
	}
	for y0 := r0; y0 < r1; y0 += stripRows {
		y1 := min(r1, y0+stripRows)
		np := (y1 - y0) * cols
		dst, ldd := og[y0*ow:], spatialN
		if wide != nil {
			dst, ldd = wide, np
		}
		grid := gemm.Grid{Data: data[y0*l.wq:], Offs: l.offs, Rows: y1 - y0, Cols: cols, RowStride: l.wq}
		pa := packs[gi]
		if narrow != nil && gemm.GridTiles(narrow[gi], np) < gemm.GridTiles(pa, np) {
			pa = narrow[gi]
		}
		switch {
		case reluStored: // a plain Relu epilogue, in the stores
			gemm.MulPackedAGridBiasRelu(pa, grid, bias[gi*mg:(gi+1)*mg], dst, ldd, threads)
		case bias != nil: // the micro-kernels add the bias as they store
			gemm.MulPackedAGridBias(pa, grid, bias[gi*mg:(gi+1)*mg], dst, ldd, threads)
		default:
			gemm.MulPackedAGrid(pa, grid, 0, dst, ldd, threads)
		}
		if wide != nil {
			for i := 0; i < mg; i++ {
				if epiWide {
					eps[gi*mg+i].Apply(wide[i*np : (i+1)*np])
					if res != nil {
						at := base + i*spatialN + y0*ow
						res.apply(wide[i*np:(i+1)*np], skip[at:at+np])
					}
				}
				copyRowsOut(og[i*spatialN+y0*ow:], ow, wide[i*np:], cols, y1-y0)
			}
		}
		if epi != nil && !reluStored && !epiWide {
			epi.planes(regs, od, base/spatialN, base/spatialN+mg, spatialN, y0*ow, y1*ow)
		}
		for i := 0; res != nil && !epiWide && i < mg; i++ {
			at := base + i*spatialN + y0*ow
			res.apply(od[at:at+(y1-y0)*ow], skip[at:at+(y1-y0)*ow])
		}
	}
}

// noEpiWide keeps a band's epilogue on the output's planes, for the tests
// and benchmarks that compare.
var noEpiWide = false

// gridChannelPixels is the largest map (output pixels) whose convolution
// threads split by output channels rather than by bands of rows (a var for
// the tests). ResNet-20 at 2 threads, paired runs: 0.72 ms split by bands,
// 0.71 with 8x8 maps split by channels, 0.70 with 16x16 ones too; 32x32
// maps too gave 0.70-0.71 (an AVX2 VM). On the Zen 5 VM, with idle workers
// spinning between runs (parallel.spinFor) and runs alternating 5 by 5 in
// one process, 16x16 maps in bands: ResNet-20 0.342 -> 0.320 and 0.365 ->
// 0.344 ms, ResNet-56 1.009 -> 0.958 ms with the CPUs near (unchanged with
// them apart); squeezenet, yolo-silu, shufflenet, efficientnet,
// mobilenetv2, unet, convnext and PaddleOCR det/rec/cls within 1%. A
// band's halo row is all the threads exchange; a channel share reads the
// other thread's half of the input.
var gridChannelPixels = 64

// gridChannelMACs is the least work (multiply-adds) a thread's share of the
// output channels must have for each float of the input layout it makes:
// every thread lays out the whole input. ResNet-20's stride-1 3x3 layers
// have 92-104 at 2 threads, its stride-2 ones 30-46; with a limit of 64
// (bands for the stride-2 layers) ResNet-20 at 2 threads took 0.70 ms and
// the zoo's CIFAR ResNet 2.09, with 16 0.69-0.70 and 2.07 (paired runs).
const gridChannelMACs = 16

// gridChannelsFit reports whether runGridChannels takes a convolution of
// one image and group (mg output channels) laid out by l on threads.
func gridChannelsFit(l *gridLayout, mg, threads int) bool {
	g := l.geo
	share := (mg + threads - 1) / threads * len(l.offs) * g.oh * g.ow
	return g.oh*g.ow <= gridChannelPixels && share >= gridChannelMACs*l.cg*l.cs
}

// runGridChannels is runGrid for one image and group on threads, split by
// output channels: each thread lays out the whole input in its own buffer
// and computes its share of whole row tiles of the weights over every pixel.
// On small maps a band of rows costs each thread all the weights and a
// layout of the band's rows whose cost is mostly per channel; a share reads
// its own weights only. Laying the input out once, in shares, for both
// (a barrier between) measured no faster: the threads then read each
// other's halves.
func runGridChannels(ctx *Context, l *gridLayout, threads int, xd, od, bias []float32, pack *gemm.PackedA, narrow []*gemm.PackedA, prog *ewProgram, epi *ewRun, res *residual, skip []float32) {
	geo := l.geo
	cols := l.cols
	np := geo.oh * cols
	pa := pack
	if narrow != nil && gemm.GridPartTiles(narrow[0], threads, np) < gemm.GridPartTiles(pa, threads, np) {
		pa = narrow[0]
	}
	slot := l.cg * l.cs
	bufs := ctx.seatScratch(threads, slot)
	defer ctx.Release(bufs.buf)
	var wides seatRegions
	if cols != geo.ow {
		wides = ctx.seatScratch(threads, pa.M*np)
		defer ctx.Release(wides.buf)
	}
	w := l.chanWork.Swap(nil) // nil while another call has it: then a new one
	if w == nil {
		w = &gridChannelsWork{}
		w.item = w.part
	}
	*w = gridChannelsWork{item: w.item, l: l, threads: threads, np: np,
		xd: xd, od: od, bias: bias, skip: skip, bufs: bufs, wides: wides, pa: pa, prog: prog, epi: epi, res: res}
	parallel.ForSeat(threads, threads, w.item)
	*w = gridChannelsWork{item: w.item} // keeps nothing of this call alive
	l.chanWork.Store(w)
}

// gridChannelsWork is what runGridChannels' threads compute with. The
// layout keeps one between calls, with its part method bound once: a
// closure for the threads would be garbage every call (see Session.vals).
type gridChannelsWork struct {
	item               func(seat, part int)
	l                  *gridLayout
	threads, np        int
	xd, od, bias, skip []float32
	bufs, wides        seatRegions // each seat's phase buffer and strip
	pa                 *gemm.PackedA
	prog               *ewProgram
	epi                *ewRun
	res                *residual
}

// part computes share part of the output channels on seat's buffers.
func (w *gridChannelsWork) part(seat, part int) {
	l, geo, threads, np, pa := w.l, w.l.geo, w.threads, w.np, w.pa
	xd, od, bias, skip, bufs, wides := w.xd, w.od, w.bias, w.skip, w.bufs, w.wides
	prog, epi, res := w.prog, w.epi, w.res
	spatialN, cols := geo.oh*geo.ow, l.cols
	buf := bufs.at(seat)
	l.fillRows(geo, xd, buf, 0, l.hq, true)
	grid := gemm.Grid{Data: buf, Offs: l.offs, Rows: geo.oh, Cols: cols, RowStride: l.wq}
	dst, ldd := od, spatialN
	var wide []float32
	if wides.buf != nil {
		wide = wides.at(seat)
		dst, ldd = wide, np
	}
	i0, i1 := gemm.MulPackedAGridPart(pa, grid, part, threads, bias, dst, ldd)
	for i := i0; wide != nil && i < i1; i++ {
		for y := 0; y < geo.oh; y++ {
			copy(od[i*spatialN+y*geo.ow:i*spatialN+(y+1)*geo.ow], wide[i*np+y*cols:])
		}
	}
	if epi != nil {
		epi.planes(prog.registers(), od, i0, i1, spatialN, 0, spatialN)
	}
	for i := i0; res != nil && i < i1; i++ {
		res.apply(od[i*spatialN:(i+1)*spatialN], skip[i*spatialN:(i+1)*spatialN])
	}
}

// gridTail is the slack after each channel's phase planes (see phaseTaps):
// the 24 columns of a last panel, one more group of 8 and the widest kernel
// row a panel takes in place.
const gridTail = 64

// ownBufFloats caps the copies of the phase buffer that bands lay out for
// themselves (1 MiB, about an L2): past that a convolution runs long enough
// that one more parallel region is noise, and the copies and twice-laid-out
// halo rows would only add memory traffic (ResNet-50's 56x56 layers).
const ownBufFloats = 1 << 18

// fillPhases writes the input plane src into the sh*sw phase planes of dst
// (each hq x wq; phase (py, px) holds the zero-padded input's rows py, py+sh,
// ... and columns px, px+sw, ...), only the phases marked in need (all when
// nil), and only where they hold input: the padding is left as it is.
func fillPhases(g convGeom, hq, wq int, src, dst []float32, need []bool) {
	fillPhaseRows(g, hq, wq, src, dst, need, 0, hq)
}

// fillPhaseRows is fillPhases on rows [i0, i1) of the phase planes only.
func fillPhaseRows(g convGeom, hq, wq int, src, dst []float32, need []bool, i0, i1 int) {
	fillPhaseRowsAt(g, hq, wq, hq*wq, src, dst, need, i0, i1, 0)
}

// fillPhaseRowsAt is fillPhaseRows into planes of plane floats that start at
// row r0 (the stem path's strip buffers: row i of a phase lands at row i-r0).
func fillPhaseRowsAt(g convGeom, hq, wq, plane int, src, dst []float32, need []bool, i0, i1, r0 int) {
	for _, pc := range phaseCopies(g, hq, wq, plane, need, i0, i1, r0) {
		pc.apply(src, dst)
	}
}

// phaseCopy is one block copy of a phase layout, the same for every input
// channel: rows x cols floats from src[src:] (rows srcRow apart) to
// dst[dst:end] (rows wq apart); at stride 2 with split, the even columns to
// dst[dst:] and the odd ones to dst[dst2:] (vec.SplitRows); at other
// strides, every sw-th column, row by row.
type phaseCopy struct {
	src, dst, end, dst2    int
	rows, cols, srcRow, wq int
	sw                     int
	split                  bool
	// deal: at strides 4 and 8, column c of each row goes to the phase
	// that starts at dsts[c%sw] (vec.DealRows), ends[c%sw] its plane's end.
	deal       bool
	dsts, ends [8]int
}

func (pc *phaseCopy) apply(src, dst []float32) {
	switch {
	case pc.split:
		_ = vec.SplitRows(dst[pc.dst:], dst[pc.dst2:], pc.wq, src[pc.src:], pc.srcRow, pc.rows, pc.cols)
	case pc.deal:
		var to [8][]float32
		for i := range pc.sw {
			to[i] = dst[pc.dsts[i]:pc.ends[i]]
		}
		_ = vec.DealRows(to[:pc.sw], pc.wq, src[pc.src:], pc.srcRow, pc.rows, pc.cols)
	case pc.sw == 1:
		_ = vec.CopyRows(dst[pc.dst:pc.end], pc.wq, src[pc.src:], pc.srcRow, pc.rows, pc.cols)
	default:
		for i := 0; i < pc.rows; i++ {
			at := pc.dst + i*pc.wq
			vec.Strided(dst[at:at+pc.cols], src[pc.src+i*pc.srcRow:], pc.sw)
		}
	}
}

// phasePlans keeps a layout's phaseCopies by the rows they lay out: a
// layer lays out the same rows (its bands, its strips) in every run, and
// planning them again was garbage each time (see Session.vals). A layout
// calls it with one plane size and set of phases, so the rows are the key.
//
// The threads of a call look their bands' plans up at once, so a lookup
// only reads: the plans are a list replaced whole when one is added. With
// a mutex taken on every lookup its line went back and forth between the
// threads' cores: on the 2-vCPU VM with its CPUs apart a band's layout
// took 1.22-1.29 us, with the list 1.08-1.09 (BenchmarkGridLayoutBands).
type phasePlans struct {
	mu    sync.Mutex // taken to add a plan
	plans atomic.Pointer[[]phasePlan]
}

type phasePlan struct {
	key [3]int
	pcs []phaseCopy
}

func (pp *phasePlans) of(g convGeom, hq, wq, plane int, need []bool, i0, i1, r0 int) []phaseCopy {
	key := [3]int{i0, i1, r0}
	if pcs, ok := pp.lookup(key); ok {
		return pcs
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pcs, ok := pp.lookup(key); ok {
		return pcs
	}
	var next []phasePlan
	if p := pp.plans.Load(); p != nil {
		next = slices.Clone(*p)
	}
	pcs := phaseCopies(g, hq, wq, plane, need, i0, i1, r0)
	next = append(next, phasePlan{key, pcs})
	pp.plans.Store(&next)
	return pcs
}

// lookup returns the plan for key, if one was made.
func (pp *phasePlans) lookup(key [3]int) ([]phaseCopy, bool) {
	if p := pp.plans.Load(); p != nil {
		for i := range *p {
			if (*p)[i].key == key {
				return (*p)[i].pcs, true
			}
		}
	}
	return nil, false
}

// phaseCopies plans fillPhaseRowsAt for one channel: the block copies, in
// channel-relative offsets, that every channel then runs (see fillChannels).
// Working the ranges out once per call rather than per channel: on an 8x8
// map with 64 channels the per-channel arithmetic (validRange's divisions)
// had cost several times the copies. A phase's rows go in one call
// (vec.CopyRows at stride 1, and at stride 2 vec.SplitRows deals each input
// row's even and odd columns to the two column phases at once): a call per
// row and phase took a third of ResNet-20's stride-2 convolutions, whose
// rows are 16-32 floats.
func phaseCopies(g convGeom, hq, wq, plane int, need []bool, i0, i1, r0 int) []phaseCopy {
	var pcs []phaseCopy
	for py := 0; py < g.sh; py++ {
		// Rows i with i*sh + py - pt inside the input.
		ilo, ihi := validRange(hq, g.h, g.sh, py, g.pt)
		ilo, ihi = max(ilo, i0), min(ihi, i1)
		if ilo >= ihi {
			continue
		}
		rows, srcRow := ihi-ilo, g.sh*g.w
		srow := (ilo*g.sh + py - g.pt) * g.w // input row of phase row ilo
		if g.sw == 2 {
			if pc, ok := splitPhaseRows(g, wq, plane, need, py, (ilo-r0)*wq, rows, srcRow); ok {
				pc.src = srow
				pcs = append(pcs, pc)
				continue
			}
		}
		if g.sw == 4 || g.sw == 8 {
			if pc, ok := dealPhaseRows(g, wq, plane, need, py, (ilo-r0)*wq, rows, srcRow); ok {
				pc.src = srow
				pcs = append(pcs, pc)
				continue
			}
		}
		for px := 0; px < g.sw; px++ {
			q := py*g.sw + px
			if need != nil && !need[q] {
				continue
			}
			// Columns j with j*sw + px - pl inside the input row.
			lo, hi := validRange(wq, g.w, g.sw, px, g.pl)
			if lo >= hi {
				continue
			}
			ix0 := lo*g.sw + px - g.pl
			pcs = append(pcs, phaseCopy{src: srow + ix0, dst: q*plane + (ilo-r0)*wq + lo, end: (q + 1) * plane,
				rows: rows, cols: hi - lo, srcRow: srcRow, wq: wq, sw: g.sw})
		}
	}
	return pcs
}

// splitPhaseRows plans rows of input row phase py into both column phases
// of a stride-2 convolution with vec.SplitRows, where both are needed and
// hold every column of the input rows (each input column lands in one of
// them); false leaves them to per-phase copies. The caller sets src.
func splitPhaseRows(g convGeom, wq, plane int, need []bool, py, at, rows, srcRow int) (phaseCopy, bool) {
	var los [2]int
	for px := 0; px < 2; px++ {
		lo, hi := validRange(wq, g.w, 2, px, g.pl)
		if need != nil && !need[py*2+px] {
			return phaseCopy{}, false
		}
		// The phase's first column reads input column lo*2 + px - pl, and
		// it must take all of that parity's columns.
		ix0 := lo*2 + px - g.pl
		if ix0 < 0 || ix0 > 1 || hi-lo != (g.w-ix0+1)/2 {
			return phaseCopy{}, false
		}
		los[ix0] = (py*2+px)*plane + at + lo
	}
	return phaseCopy{dst: los[0], dst2: los[1], rows: rows, cols: g.w, srcRow: srcRow, wq: wq, sw: 2, split: true}, true
}

// dealPhaseRows plans rows of input row phase py into all sw column phases
// of a stride-4 or stride-8 convolution with vec.DealRows, where all are
// needed and together hold every column of the input rows, each in the
// phase of its residue (no padding on the left, or a multiple of sw); false
// leaves them to per-phase gathers. The caller sets src.
func dealPhaseRows(g convGeom, wq, plane int, need []bool, py, at, rows, srcRow int) (phaseCopy, bool) {
	pc := phaseCopy{rows: rows, cols: g.w, srcRow: srcRow, wq: wq, sw: g.sw, deal: true}
	for px := 0; px < g.sw; px++ {
		q := py*g.sw + px
		if need != nil && !need[q] {
			return phaseCopy{}, false
		}
		lo, hi := validRange(wq, g.w, g.sw, px, g.pl)
		ix0 := lo*g.sw + px - g.pl // the input column the phase starts at
		if ix0 < 0 || ix0 >= g.sw || hi-lo != (g.w-ix0+g.sw-1)/g.sw {
			return phaseCopy{}, false
		}
		pc.dsts[ix0], pc.ends[ix0] = q*plane+at+lo, (q+1)*plane
	}
	return pc, true
}

// forceIm2col sends convolutions with packed weights through im2col too, for
// the tests and benchmarks that compare both paths.
var forceIm2col = false

// copyRowsOut copies rows rows of a strip computed cols wide (the grid's
// padded rows) into output rows ow wide: one vec.CopyRows call a channel,
// where a copy per row spent more on the calls than on the floats (SqueezeNet's
// stem, 111 wide: 18% of its time in memmove).
func copyRowsOut(dst []float32, ow int, src []float32, cols, rows int) {
	mustCopyRows(dst, ow, src, cols, rows, ow) // the strip and output sizes are the caller's own
}
