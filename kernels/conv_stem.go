package kernels

import (
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// The stem path of Conv: a network's first convolution, over the 1-4
// channels of the image. The grid path lays out the phase planes of the
// whole image first (2 MiB for YOLO's 416x416 input), then runs the GEMM
// over them, then the epilogue over the output in strips (2.7 MiB in all for
// YOLO's stem): the layout has left the cache before the GEMM reads it. Here
// each strip of a few output rows lays out only the phase rows it reads (its
// rows and the halo below) into a small buffer that stays in L1/L2, runs the
// same grid GEMM over them and applies the epilogue to the rows it just
// wrote. Strips are whole panels of the 4-row kernel (24 wide), which runs
// these K=27 products at about 40 GMAC/s from cache where the 6x16 one
// reaches 30-34 (32 and 64 output channels). Other layers' inputs have many
// channels: a strip's phase rows would then be as large as the grid path's
// planes, so they keep the grid path.
//
// In-model thread CPU time against the grid path (BenchmarkConvStemVsGrid,
// loaded machine): YOLO's stem with its SiLU 0.78-0.82x (1.51 ms), MobileNetV2's
// 0.91x, ResNet-50's 7x7 0.98-0.99x; SqueezeNet's (111 wide, through a
// scratch strip as on the grid path, whose planes fit in L2) unchanged.

// stemMaxChannels is the most input channels (per group) a stem has: RGB,
// RGBA, grayscale.
const stemMaxChannels = 4

// stemStripFloats is about how much output a strip computes (128 KiB): its
// phase rows and its output stay in L2 from the layout to the epilogue.
// Against 64 KiB, in-model thread CPU time (BenchmarkConvStemVsGrid, loaded
// machine): YOLO's stem 0.97x, MobileNetV2's 0.95x, SqueezeNet's unchanged;
// 256 KiB was no better.
const stemStripFloats = 1 << 15

// stemLayout places the phase rows of one strip of output rows: the grid
// layout's planes cut down to the strip's rows and the halo below them.
type stemLayout struct {
	geo    convGeom
	cg, mg int
	narrow bool // for the 4-row kernel's 24-wide panels
	rows   int  // output rows per strip
	hq, wq int  // the whole phase planes' size (as gridLayout's)
	hs     int  // phase rows per strip: rows and the halo
	cols   int  // output columns computed per row: ow rounded up to 8
	cs     int  // floats per input channel in the strip buffer
	offs   []int
	phases []bool
	plans  phasePlans
}

// stemFits reports whether the stem path computes a convolution that the
// grid path would: few input channels per group.
func stemFits(cg int) bool {
	return cg <= stemMaxChannels
}

// stemFor returns the stem layout of l's convolution with mg output channels
// per group, made on first use.
func (l *gridLayout) stemFor(mg int, narrow bool) *stemLayout {
	if s := l.stem.Load(); s != nil && s.mg == mg && s.narrow == narrow {
		return s
	}
	s := newStemLayout(l.geo, l.cg, mg, narrow, 0)
	l.stem.Store(s)
	return s
}

// forceGridStem sends stems through the grid path, for the tests and
// benchmarks that compare both.
var forceGridStem = false

// newStemLayout lays out strips of about stemStripFloats of output, or of
// rows rows when rows > 0.
func newStemLayout(g convGeom, cg, mg int, narrow bool, rows int) *stemLayout {
	cols := roundUp8(g.ow)
	halo := (g.kh - 1) * g.dh / g.sh
	l := &stemLayout{
		geo: g, cg: cg, mg: mg, narrow: narrow, cols: cols,
		hq: g.oh + halo,
		wq: cols + (g.kw-1)*g.dw/g.sw,
	}
	if rows > 0 {
		l.rows = min(rows, g.oh)
		l.hs = l.rows + halo
		l.cs, l.phases, l.offs = phaseTaps(g, cg, l.hs, l.wq)
		return l
	}
	rows = max(1, stemStripFloats/max(1, mg*cols))
	// Whole panels: a strip of rows*cols pixels is a multiple of the
	// kernel's panel width (24 for the 4-row kernel, else 16), so none is
	// computed through the scratch tile.
	nr := 16
	if narrow {
		nr = 24
	}
	step := nr / gcd(cols, nr)
	rows = max(step, rows/step*step)
	l.rows = min(rows, g.oh)
	l.hs = l.rows + halo
	l.cs, l.phases, l.offs = phaseTaps(g, cg, l.hs, l.wq)
	return l
}

// fill lays out phase rows [i0, i1) of the cg channels of src into the
// strip buffer dst, row i0 first. Rows that fall on padding are zeroed;
// the padding columns are never written, so the caller zeroes dst once.
func (l *stemLayout) fill(src, dst []float32, i0, i1 int) {
	g := l.geo
	plane, splane := g.h*g.w, l.hs*l.wq
	pcs := l.plans.of(g, l.hq, l.wq, splane, l.phases, i0, i1, i0)
	for ci := 0; ci < l.cg; ci++ {
		d := dst[ci*l.cs : (ci+1)*l.cs]
		for q, need := range l.phases {
			if !need {
				continue
			}
			ilo, ihi := validRange(l.hq, g.h, g.sh, q/g.sw, g.pt)
			for i := i0; i < i1; i++ {
				if i < ilo || i >= ihi {
					clear(d[q*splane+(i-i0)*l.wq : q*splane+(i-i0+1)*l.wq])
				}
			}
		}
		for k := range pcs {
			pcs[k].apply(src[ci*plane:(ci+1)*plane], d)
		}
	}
}

// runStem computes the convolution of Run as runGrid would, strip by strip
// (see above); eps, when not nil, is the epilogue per output channel as one
// pass (prog's rowEpilogues). With more than one thread, each takes bands of
// output rows of one image and group, with its own strip
// buffers: one parallel region, and each thread's layout, GEMM and
// epilogue stay in its own core's cache.
func runStem(ctx *Context, l *stemLayout, n, g, mg int, xd, od, bias []float32, packs, narrow []*gemm.PackedA, prog *ewProgram, epi *ewRun, eps []vec.Epilogue, reluStores bool) {
	geo, cg := l.geo, l.cg
	c := g * cg
	oh, ow, cols := geo.oh, geo.ow, l.cols
	spatialN := oh * ow
	plane := geo.h * geo.w
	halo := l.hs - l.rows
	kk := cg * geo.kh * geo.kw
	sb := newStemBands(ctx, n, g, oh, mg*kk*spatialN)
	workers := sb.workers
	bufs := ctx.seatScratch(workers, cg*l.cs)
	defer ctx.Release(bufs.buf)
	// With padded rows (cols > ow) a strip is computed into wide, its rows
	// cols apart, and copied out without the extra columns.
	var wides seatRegions
	if cols != ow {
		wides = ctx.seatScratch(workers, mg*l.rows*cols)
		defer ctx.Release(wides.buf)
	}
	// band computes output rows [r0, r1) of group gi of image b with one
	// seat's buffers.
	band := func(b, gi, r0, r1 int, buf, wide []float32) {
		xg := xd[(b*c+gi*cg)*plane:]
		base := (b*g*mg + gi*mg) * spatialN
		og := od[base : base+mg*spatialN]
		var bs []float32
		if bias != nil {
			bs = bias[gi*mg : (gi+1)*mg]
		}
		var regs [][]float32
		if epi != nil && eps == nil {
			regs = prog.registers()
		}
		// A plain Relu goes into the GEMM's stores (see convKernel.reluStores).
		relu := reluStores && bs != nil && !noReluStores
		// finish applies the epilogue to output rows [y0, y1), just
		// computed and still in cache. Inside the band it runs on to a
		// multiple of 8 floats, into the next row, which is computed
		// (overwritten) later: the vector loops then leave no scalar tail.
		finish := func(y0, y1 int) {
			n := (y1 - y0) * ow
			if y1 < r1 {
				n = roundUp8(n)
			}
			for i := 0; epi != nil && i < mg; i++ {
				at := base + i*spatialN + y0*ow
				if eps != nil {
					eps[gi*mg+i].Apply(od[at : at+n])
					continue
				}
				epi.span(regs, od, od, at, at+n)
			}
		}
		for y0 := r0; y0 < r1; y0 += l.rows {
			y1 := min(r1, y0+l.rows)
			l.fill(xg, buf, y0, min(l.hq, y1+halo))
			grid := gemm.Grid{Data: buf, Offs: l.offs, Rows: y1 - y0, Cols: cols, RowStride: l.wq}
			if wide == nil {
				stemGEMM(packs[gi], narrow, gi, grid, bs, og[y0*ow:], spatialN, relu)
				if !relu {
					finish(y0, y1)
				}
				continue
			}
			np := (y1 - y0) * cols
			stemGEMM(packs[gi], narrow, gi, grid, bs, wide, np, relu)
			for i := 0; i < mg; i++ {
				if eps != nil && !relu {
					// One call per channel on the strip's rows, a
					// multiple of 8 wide, before they go out.
					eps[gi*mg+i].Apply(wide[i*np : (i+1)*np])
				}
				copyRowsOut(og[i*spatialN+y0*ow:], ow, wide[i*np:], cols, y1-y0)
			}
			if eps == nil && !relu {
				finish(y0, y1)
			}
		}
	}
	seatBufs := func(seat int) (buf, wide []float32) {
		return bufs.at(seat), wides.at(seat)
	}
	// Each seat zeroes its own buffer (the padding columns: fill never
	// writes them), once, on its own core: cleared by the caller, a
	// worker's buffer would first have to move out of the caller's cache
	// (ResNet-20's stem at 2 threads took longer than at 1).
	sb.run(func(seat int) {
		buf, _ := seatBufs(seat)
		clear(buf)
	}, func(seat, b, gi, r0, r1 int) {
		buf, wide := seatBufs(seat)
		band(b, gi, r0, r1, buf, wide)
	})
}

// stemBands is how the stem path (runStem, runStemPool) splits its work:
// bands of rows of one image and group, taken by up to workers threads,
// each with its own seat of buffers.
type stemBands struct{ n, g, rows, bands, per, workers int }

// newStemBands splits rows output rows of n images of g groups, macs
// multiply-adds an image and group.
func newStemBands(ctx *Context, n, g, rows, macs int) stemBands {
	bands := min(rows, threadsFor(ctx, macs, minBandMACs))
	// Even bands (a band's last strip may then be partial): whole strips
	// per band would make SqueezeNet's two bands 57 and 54 rows.
	per := (rows + bands - 1) / bands
	bands = (rows + per - 1) / per
	return stemBands{n: n, g: g, rows: rows, bands: bands, per: per,
		workers: min(n*g*bands, threadsFor(ctx, n*g*macs, minBandMACs))}
}

// run calls band for every band, rows [r0, r1) of group gi of image b on a
// seat; ready prepares a seat once, on the thread that then uses it.
func (sb stemBands) run(ready func(seat int), band func(seat, b, gi, r0, r1 int)) {
	if sb.workers == 1 {
		ready(0)
		for b := 0; b < sb.n; b++ {
			for gi := 0; gi < sb.g; gi++ {
				for r0 := 0; r0 < sb.rows; r0 += sb.per {
					band(0, b, gi, r0, min(sb.rows, r0+sb.per))
				}
			}
		}
		return
	}
	readied := make([]bool, sb.workers)
	parallel.ForSeat(sb.workers, sb.n*sb.g*sb.bands, func(seat, i int) {
		t, gi, b := i%sb.bands, i/sb.bands%sb.g, i/(sb.bands*sb.g)
		if !readied[seat] {
			ready(seat)
			readied[seat] = true
		}
		band(seat, b, gi, t*sb.per, min(sb.rows, (t+1)*sb.per))
	})
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// stemGEMM multiplies group gi's packed weights by grid into dst (ldd
// apart), with the 4-row packing where it computes fewer padding tiles, and
// the bias bs (nil for none) added as the micro-kernels store, and with relu
// (and a bias) the Relu too.
func stemGEMM(pa *gemm.PackedA, narrow []*gemm.PackedA, gi int, grid gemm.Grid, bs, dst []float32, ldd int, relu bool) {
	np := grid.Rows * grid.Cols
	if narrow != nil && gemm.GridTiles(narrow[gi], np) < gemm.GridTiles(pa, np) {
		pa = narrow[gi]
	}
	switch {
	case relu:
		gemm.MulPackedAGridBiasRelu(pa, grid, bs, dst, ldd, 1)
	case bs != nil:
		gemm.MulPackedAGridBias(pa, grid, bs, dst, ldd, 1)
	default:
		gemm.MulPackedAGrid(pa, grid, 0, dst, ldd, 1)
	}
}
