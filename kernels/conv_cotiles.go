package kernels

import (
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// The co-tile path of Conv (AVX-512): the output channels in the vector
// lanes, 32 at a time, and up to 14 consecutive output pixels of a row per
// tile, each input value broadcast (gemm.CoTile). The input is laid out as
// the grid path lays it out (zero-padded phase planes, one pass) and read
// where it lies; a row of any width is whole tiles (28 = 14 + 14, 7, 13),
// where the grid kernels' 32-pixel panels compute 28 columns as 32 and
// im2col copies every input value once per tap and packs it again. The sums
// are the GEMM tiles', so the bits are those of the other paths.
//
// Measured (BenchmarkConvCoTiles, paired, thread CPU time, AVX-512): see
// coFits.

// coFits reports whether the co-tile path computes this convolution: a
// kernel of more than one tap or a pointwise one on a small map (a strided
// 1x1 laid out in phases took 1.5-1.6x the time), at least 32 output
// channels a group with at most a quarter of the lanes computed empty, and
// at least 128 taps, which keep a tile's scatter a small part of its work
// (a 64->64 1x1 on 13x13 took 1.08-1.11x the GEMM's time, 128->64
// 0.89x). Maps the grid path computes whole (a width within 1/16 of a
// multiple of 8) keep it below 512 taps, where its 32-pixel panels cost
// less per multiply-add, and on maps of up to coGridPixels: in whole CIFAR
// ResNets the co-tiles made their 64-channel 8x8 layers slower, 1.03-1.05x
// at 1 thread and 1.15-1.28x at 2 (each thread lays out only its share
// there).
//
// BenchmarkConvCoTiles, paired, ms co-tiles / the path before: ResNet-50's
// 3x3 layers on 28x28 0.70-0.71, 14x14 0.80-0.83, 7x7 0.76-0.80, stride 2
// 0.83-0.85, 56x56 (grid before) 0.85-0.96; SqueezeNet's 3x3 expands on
// 27x27 and 13x13 0.80-0.95, PaddleOCR-sized 64-channel 3x3 0.89-0.95,
// CIFAR 64 channels on 8x8 0.91-1.01. Kept off: SqueezeNet's 16->64 on
// 55x55 (144 taps, grid) 1.09-1.19, CIFAR 32 channels on 16x16 (288 taps,
// grid) 1.02-1.04.
//
// Pointwise, against the GEMM: 7x7 maps 0.50-0.97 (MobileNetV2 960->160
// 0.50-0.60, 320->1280 0.82, ResNet-50 2048->512 0.80-0.84, 512->2048
// 0.95-0.97), 14x14 with 64 channels 0.72-0.79, YOLO's 256->64 on 13x13
// 0.71-0.76. Kept off: larger maps,
// where a tile's taps are as many input planes far apart (1024->256 on
// 14x14 1.02, 256->1024 1.17, 13x13 256->256 1.12, 28x28 1.04-1.6, 56x56
// 1.6-2.0).
func coFits(g convGeom, cg, mg int) bool {
	lanes := (mg + 31) / 32 * 32
	taps := cg * g.kh * g.kw
	if noCoTiles || mg < 32 || 4*(lanes-mg) > lanes || taps < 128 {
		return false
	}
	if n := g.oh * g.ow; isPointwise(g) {
		// The GEMM's 32-pixel panels waste a fifth or more of a small map
		// (49 pixels as 64), or few channels read the input in place.
		panels := (n + 31) / 32 * 32
		return n <= 256 && (5*(panels-n) >= panels || mg <= 72)
	}
	return g.kh*g.kw > 1 && (!gridFits(g) || taps >= 512 && g.oh*g.ow > coGridPixels)
}

// coGridPixels is the largest map the grid path keeps from the co-tiles
// whatever its taps (it was gridChannelPixels, 256, when these were
// measured; 16x16 maps now split by bands, and the co-tiles' choice stayed).
const coGridPixels = 256

// isPointwise reports whether g is a 1x1 convolution of stride 1 without
// padding: its input is its im2col matrix.
func isPointwise(g convGeom) bool {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w
}

// noCoTiles keeps convolutions off the co-tile path, for the tests and
// benchmarks that compare.
var noCoTiles = false

// coItemsPerSeat is how many items runCo makes per seat at least, where
// the rows allow: with one or two items a seat, one seat's extra rows (11
// rows over 2 seats) are most of the other's wait.
const coItemsPerSeat = 4

// ceilDiv is a/b rounded up, for positive a and b.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// coPixels is about how many output pixels a work item of runCo covers: its
// epilogue and shortcut then run over spans of that many floats per channel.
const coPixels = 128

// runCo computes the convolution of Run on the co-tile path, co holding
// each group's weights: with a layout l, from the input laid out by it;
// with l nil, a pointwise convolution, from the input where it lies, its
// pixels one long row.
func (k *convKernel) runCo(ctx *Context, l *gridLayout, geo convGeom, co []*gemm.PackedCo, n, g, cg, mg int, xd, od, bias []float32, epi *ewRun, sk []float32, skip bool) {
	c, m := g*cg, g*mg
	oh, ow := geo.oh, geo.ow
	spatialN := oh * ow
	// Pixel (y, x) of the output grid reads data[offs[t] + y*rowStride + x]
	// for tap t, data being the image and group's first channel at
	// chanStride floats a channel.
	data, offs := xd, []int(nil)
	width, rowStride, chanStride := ow, 0, spatialN
	bandPixels := max(1, min(oh, coPixels/ow)) * ow // whole rows
	if l != nil {
		data = ctx.Scratch(n * c * l.cs)
		defer ctx.Release(data)
		l.fill(ctx, geo, n*c, xd, data)
		offs, rowStride, chanStride = l.offs, l.wq, l.cs
	} else {
		offs = k.planeOffs(cg, spatialN)
		width, bandPixels = spatialN, coPixels
	}
	span := 0
	for _, o := range offs {
		span = max(span, o+1)
	}
	blocks := co[0].Blocks()
	want := threadsFor(ctx, n*m*len(offs)*spatialN, minBandMACs)
	bands := ceilDiv(spatialN, bandPixels)
	if per := n * g * blocks; want > 1 && per*bands < want {
		// Fewer items than seats (a 32-channel block on an 11x11 map was
		// one item, 26 us at 1 thread and at 2): narrower bands. A band's
		// tiles are its rows' tiles, so this adds no tiles; only the
		// epilogue runs over shorter spans. Not where the blocks alone
		// give each seat an item: a tile streams its block's weights
		// (a 176-channel 3x3 block is 200 KB), which then stay in the
		// seat's own cache (Inception's 176 -> 96 3x3 stride 2 on 11x11,
		// accounted 2-thread time: 1.49x the 1-thread speed in 3 items,
		// 1.21x in 9).
		more := ceilDiv(coItemsPerSeat*want, per)
		if l != nil {
			bandPixels = ceilDiv(oh, min(more, oh)) * width // whole rows
		} else { // whole tiles of the one long row
			bandPixels = ceilDiv(ceilDiv(spatialN, more), gemm.CoTileMax) * gemm.CoTileMax
		}
		bands = ceilDiv(spatialN, bandPixels)
	}
	items := n * g * bands * blocks
	threads := min(items, want)
	tiles := ctx.seatScratch(threads, gemm.CoTileFloats)
	defer ctx.Release(tiles.buf)
	cb := coBands{k: k, co: co, tiles: tiles, data: data, offs: offs, bias: bias, od: od, sk: sk, epi: epi, skip: skip,
		blocks: blocks, bands: bands, g: g, c: c, cg: cg, m: m, mg: mg, span: span,
		chanStride: chanStride, rowStride: rowStride, spatialN: spatialN, bandPixels: bandPixels, width: width}
	if threads == 1 {
		// No closure for the pool: one at every call was the largest
		// garbage of a CNN's run (GoogLeNet: 14 KB of 50).
		var regs [][]float32 // the seat's epilogue registers, made on first use
		for it := 0; it < items; it++ {
			cb.run(0, it, &regs)
		}
		return
	}
	mt := cb
	mt.regs = make([][][]float32, threads)
	parallel.ForSeat(threads, items, mt.item)
}

// coBands is one runCo call's work: item it of its blocks x bands x groups
// x images, on a seat's tile buffer and epilogue registers.
type coBands struct {
	k                           *convKernel
	co                          []*gemm.PackedCo
	tiles                       seatRegions
	data, bias, od, sk          []float32
	offs                        []int
	epi                         *ewRun
	skip                        bool
	regs                        [][][]float32 // per seat (above one thread), made on first use
	blocks, bands, g, c, cg     int
	m, mg, span                 int
	chanStride, rowStride       int
	spatialN, bandPixels, width int
}

// item runs item it on a seat of the pool.
func (cb *coBands) item(seat, it int) { cb.run(seat, it, &cb.regs[seat]) }

// run runs item it on the seat's tile buffer, with its registers at regs.
func (cb *coBands) run(seat, it int, regs *[][]float32) {
	k, blocks, bands, g, spatialN, width := cb.k, cb.blocks, cb.bands, cb.g, cb.spatialN, cb.width
	q := it % blocks
	t := it / blocks % bands
	gi := it / (blocks * bands) % g
	b := it / (blocks * bands * g)
	tile := cb.tiles.at(seat)
	src := cb.data[(b*cb.c+gi*cb.cg)*cb.chanStride:]
	var bs []float32
	if cb.bias != nil {
		bs = cb.bias[gi*cb.mg : (gi+1)*cb.mg]
	}
	base := (b*cb.m + gi*cb.mg) * spatialN
	lo, hi := t*cb.bandPixels, min(spatialN, (t+1)*cb.bandPixels)
	// Each row's part of the band, in tiles of about equal width.
	for p := lo; p < hi; {
		y, x := p/width, p%width
		end := min(hi, (y+1)*width)
		chunks := (end - p + gemm.CoTileMax - 1) / gemm.CoTileMax
		for ch := 0; ch < chunks; ch++ {
			x0, x1 := x+ch*(end-p)/chunks, x+(ch+1)*(end-p)/chunks
			gemm.CoTile(cb.co[gi], q, x1-x0, src, y*cb.rowStride+x0, cb.offs, cb.span, bs, cb.od, base+32*q*spatialN+y*width+x0, spatialN, tile)
		}
		p = end
	}
	// The block's channels over the band's pixels: contiguous per
	// channel, still in cache.
	c0, c1 := 32*q, min(cb.mg, 32*q+32)
	if cb.epi != nil && *regs == nil && k.eps == nil {
		*regs = k.epilogue.registers()
	}
	if cb.epi != nil {
		k.finishPlanes(cb.epi, *regs, cb.od, base/spatialN+c0, base/spatialN+c1, spatialN, lo, hi)
	}
	for i := c0; cb.skip && i < c1; i++ {
		at := base + i*spatialN
		k.res.apply(cb.od[at+lo:at+hi], cb.sk[at+lo:at+hi])
	}
}
