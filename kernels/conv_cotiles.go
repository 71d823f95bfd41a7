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
// kernel of more than one tap (1x1 convolutions read their input in place
// already; a strided one laid out in phases took 1.5-1.6x the time), at
// least 32 output channels a group with at most a quarter of the lanes
// computed empty, and at least 64 taps, which keep a tile's broadcasts and
// scatter a small part of its work. Maps the grid path computes whole (a
// width within 1/16 of a multiple of 8) keep it below 512 taps, where its
// 32-pixel panels cost less per multiply-add.
//
// BenchmarkConvCoTiles, paired, ms co-tiles / the path before: ResNet-50's
// 3x3 layers on 28x28 0.70-0.71, 14x14 0.80-0.83, 7x7 0.76-0.80, stride 2
// 0.83-0.85, 56x56 (grid before) 0.85-0.96; SqueezeNet's 3x3 expands on
// 27x27 and 13x13 0.80-0.95, PaddleOCR-sized 64-channel 3x3 0.89-0.95,
// CIFAR 64 channels on 8x8 0.91-1.01. Kept off: SqueezeNet's 16->64 on
// 55x55 (144 taps, grid) 1.09-1.19, CIFAR 32 channels on 16x16 (288 taps,
// grid) 1.02-1.04.
func coFits(g convGeom, cg, mg int) bool {
	lanes := (mg + 31) / 32 * 32
	taps := cg * g.kh * g.kw
	return !noCoTiles && g.kh*g.kw > 1 && mg >= 32 && 4*(lanes-mg) <= lanes && taps >= 64 && (taps >= 512 || !gridFits(g))
}

// noCoTiles keeps convolutions off the co-tile path, for the tests and
// benchmarks that compare.
var noCoTiles = false

// coPixels is about how many output pixels a work item of runCo covers: its
// epilogue and shortcut then run over spans of that many floats per channel.
const coPixels = 128

// runCo computes the convolution of Run on the co-tile path: l lays the
// input out, co holds each group's weights.
func (k *convKernel) runCo(ctx *Context, l *gridLayout, co []*gemm.PackedCo, n, g, mg int, xd, od, bias []float32, epi *ewRun, sk []float32, skip bool) {
	geo, cg := l.geo, l.cg
	c, m := g*cg, g*mg
	oh, ow := geo.oh, geo.ow
	spatialN := oh * ow
	buf := ctx.Scratch(n * c * l.cs)
	defer ctx.Release(buf)
	l.fill(ctx, geo, n*c, xd, buf)
	span := 0
	for _, o := range l.offs {
		span = max(span, o+1)
	}
	blocks := co[0].Blocks()
	bandRows := max(1, min(oh, coPixels/ow))
	bands := (oh + bandRows - 1) / bandRows
	chunks := (ow + gemm.CoTileMax - 1) / gemm.CoTileMax
	items := n * g * bands * blocks
	threads := min(items, threadsFor(ctx, n*m*len(l.offs)*spatialN, minBandMACs))
	tiles := ctx.Scratch(threads * gemm.CoTileFloats)
	defer ctx.Release(tiles)
	regs := make([][][]float32, threads)
	parallel.ForSeat(threads, items, func(seat, it int) {
		q := it % blocks
		t := it / blocks % bands
		gi := it / (blocks * bands) % g
		b := it / (blocks * bands * g)
		tile := tiles[seat*gemm.CoTileFloats : (seat+1)*gemm.CoTileFloats]
		data := buf[(b*c+gi*cg)*l.cs:]
		var bs []float32
		if bias != nil {
			bs = bias[gi*mg : (gi+1)*mg]
		}
		base := (b*m + gi*mg) * spatialN
		y0, y1 := t*bandRows, min(oh, (t+1)*bandRows)
		for y := y0; y < y1; y++ {
			for ch := 0; ch < chunks; ch++ {
				x0, x1 := ch*ow/chunks, (ch+1)*ow/chunks
				gemm.CoTile(co[gi], q, x1-x0, data, y*l.wq+x0, l.offs, span, bs, od, base+32*q*spatialN+y*ow+x0, spatialN, tile)
			}
		}
		// The block's channels over the band's rows: contiguous per
		// channel, still in cache.
		c0, c1 := 32*q, min(mg, 32*q+32)
		lo, hi := y0*ow, y1*ow
		if epi != nil && regs[seat] == nil && k.eps == nil {
			regs[seat] = k.epilogue.registers()
		}
		for i := c0; epi != nil && i < c1; i++ {
			at := base + i*spatialN
			if k.eps != nil {
				k.eps[gi*mg+i].Apply(od[at+lo : at+hi])
				continue
			}
			epi.span(regs[seat], od, od, at+lo, at+hi)
		}
		for i := c0; skip && i < c1; i++ {
			at := base + i*spatialN
			k.res.apply(od[at+lo:at+hi], sk[at+lo:at+hi])
		}
	})
}
