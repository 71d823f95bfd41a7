package gemm

import (
	"sync/atomic"

	"github.com/onnxq/onnxq/kernels/parallel"
)

// Grid is a right-hand matrix read where a convolution's input lies, instead
// of from an im2col copy: column j is pixel j, in raster order, of a Rows x
// Cols output grid, and element (p, j) for the pixel (y, x) is
// Data[Offs[p] + y*RowStride + x]. Offs[p] is where tap p (an input channel,
// kernel row and kernel column) starts in Data.
type Grid struct {
	Data                  []float32
	Offs                  []int
	Rows, Cols, RowStride int
}

// at is the index into Data of column j's pixel, without the tap offset.
func (g Grid) at(j int) int { return j/g.Cols*g.RowStride + j%g.Cols }

// gridKernel is a micro-kernel that reads B through offsets: an mr x nr tile
// whose nr columns are nr/8 groups of 8 consecutive floats, group j of row p
// at b[offs[p]+ds[j]:] (ds[0] is 0). fn computes the first rows rows of a
// column of tiles down C, from consecutive A panels, adding bias per row as
// kernel.rows does.
type gridKernel struct {
	mr, nr int
	// cheap: its multiply-adds count three quarters in GridTiles (the
	// 12x32 tiles; the 8x32 ones took 1.3-1.6x their time per multiply-add,
	// 16 accumulators amortizing the B loads and inserts less, and count whole).
	cheap bool
	fn    gridFn
	// contig, when not nil, is fn for a panel whose groups are consecutive
	// floats (ds 8, 16, 24: a panel within one input row, or gathered),
	// read as whole vectors instead of paired halves.
	contig gridFn
	// narrow[g], when not nil, is fn for a ragged last panel of g groups
	// (8*g columns, g < nr/8): a row band of 128 columns ends in 8 of a
	// 24-wide panel, which fn would compute whole, through a scratch tile.
	narrow [4]gridFn
}

// fnFor is the kernel for a panel whose groups lie at ds: contig where
// they are consecutive (a panel within one input row, or gathered), else fn.
func (gk *gridKernel) fnFor(ds [4]int) gridFn {
	if gk.contig != nil && ds == [4]int{0, 8, 16, 24} {
		return gk.contig
	}
	return gk.fn
}

// gridFn computes a grid kernel's column of tiles (see gridKernel).
type gridFn func(kc int, a, b []float32, offs, ds []int, c []float32, ldc int, acc accMode, rows int, bias []float32)

// gridKernelFor is the active kernel's grid kernel for A packed with mr rows
// per panel, or nil.
func gridKernelFor(mr int) *gridKernel {
	for i := range active.grid {
		if active.grid[i].mr == mr {
			return &active.grid[i]
		}
	}
	return nil
}

// NarrowRows is the rows per panel of PackANarrow's packing on this
// machine: 8 with the AVX-512 kernel, else 4 (0: none).
func NarrowRows() int {
	switch {
	case gridKernelFor(8) != nil && active.mr != 8:
		return 8
	case gridKernelFor(4) != nil && active.mr != 4:
		return 4
	}
	return 0
}

// PackANarrow packs A (m x k) for the narrow grid kernel, which wastes no
// rows on 16 or 32 output channels (the 6-row tiles compute 18 and 36, the
// 12-row ones 24 and 36): 8 rows where the active kernel is AVX-512, else 4;
// nil when this machine has none. (Only the AVX-512 kernel has an 8-row
// grid kernel.)
func PackANarrow(m, k int, a Matrix) *PackedA {
	mr := NarrowRows()
	if mr == 0 {
		return nil
	}
	return packAWith(m, k, 1, a, mr, kcBlock)
}

// GridTiles is the cost per k step of MulPackedAGrid for p times n columns:
// its multiply-adds, padding included, those of the 12x32 AVX-512 tiles
// (gridKernel.cheap) counted three quarters: of two packings of the same A,
// the smaller one costs less. Not half: whole convolution nets ran
// 1.26-1.36x faster on the 12x32 tiles than on the AVX2 6x16 and 4x24 ones
// (YOLO 1.1x; the inserts that pair 8-float groups, partial tiles). So 16
// output channels take the 8-row narrow tiles (24 rows of 12x32 cost more),
// 32 and 64 the 12-row ones (CIFAR 32 channels on 16x16: 0.096 -> 0.077 ms
// against the 4x24 tiles).
func GridTiles(p *PackedA, n int) int { return GridTilesFor(p.M, p.mr, n) }

// GridTilesFor is GridTiles of an m-row matrix packed mr rows a panel
// (PackA's PackRows, PackANarrow's NarrowRows), known before it is packed.
func GridTilesFor(m, mr, n int) int {
	nr := active.nr
	gk := gridKernelFor(mr)
	if gk != nil {
		nr = gk.nr
	}
	if gk != nil && gk.cheap {
		return gridMACs(m, mr, gk, nr, n) * 3 / 4
	}
	return gridMACs(m, mr, gk, nr, n)
}

// PanelCols is the columns of a panel of B, the width of the micro-kernel's
// tile: a product split by columns at multiples of it leaves one ragged
// panel in all, not one a part.
func PanelCols() int { return active.nr }

// PackRows is the rows of a panel of PackA and PackAStreamed.
func PackRows() int { return active.mr }

// gridMACs is GridTilesFor in multiply-adds.
func gridMACs(m, mr int, gk *gridKernel, nr, n int) int {
	cols := roundUp(n, nr)
	if tail := n % nr; gk != nil && tail%8 == 0 && gk.narrow[tail/8] != nil {
		// A narrow kernel takes the ragged panel; one of a single group
		// has four chains of FMAs for a latency of four cycles, so it
		// runs at half speed: count it as two groups.
		cols = n - tail + max(tail, 16)
	}
	return roundUp(m, mr) * cols
}

// MulPackedAGrid computes C = P * B + beta * C for B read through g (K =
// len(g.Offs) rows, Rows*Cols columns). Panels whose 8-column groups each lie
// in one input row are read in place by a grid kernel; other panels, and
// machines without one, gather the panel first.
func MulPackedAGrid(p *PackedA, g Grid, beta float32, c []float32, ldc int, threads int) {
	mulGrid(p, g, beta, nil, c, ldc, threads, false)
}

// MulPackedAGridBias computes C = P * B + bias for B read through g, bias[i]
// added to row i of C, overwriting C: the sum a C filled with the bias and
// MulPackedAGrid with beta 1 would give, bit for bit, without the pass that
// fills it.
func MulPackedAGridBias(p *PackedA, g Grid, bias []float32, c []float32, ldc int, threads int) {
	if p.M > 0 {
		_ = bias[p.M-1]
	}
	mulGrid(p, g, 0, bias, c, ldc, threads, false)
}

// MulPackedAGridBiasRelu computes C = max(0, P * B + bias) for B read
// through g, as MulPackedAGridBias followed by a Relu over C would, bit for
// bit, in the micro-kernels' stores (see accRelu).
func MulPackedAGridBiasRelu(p *PackedA, g Grid, bias []float32, c []float32, ldc int, threads int) {
	if p.M > 0 {
		_ = bias[p.M-1]
	}
	mulGrid(p, g, 0, bias, c, ldc, threads, true)
}

func mulGrid(p *PackedA, g Grid, beta float32, bias []float32, c []float32, ldc int, threads int, relu bool) {
	gk := gridKernelFor(p.mr)
	if gk == nil && p.mr != active.mr {
		panic("gemm: PackedA was packed for another kernel")
	}
	if len(g.Offs) != p.K {
		panic("gemm: Grid has a different K than PackedA")
	}
	n := g.Rows * g.Cols
	if p.M == 0 || n == 0 {
		return
	}
	if p.K == 0 {
		if bias != nil {
			fillBias(c, ldc, bias, p.M, n)
		} else {
			scaleC(p.M, n, beta, c, ldc)
		}
		if relu {
			reluRows(c, ldc, p.M, n)
		}
		return
	}
	if beta != 0 && beta != 1 {
		scaleC(p.M, n, beta, c, ldc)
		beta = 1
	}
	lo, hi := g.Offs[0], g.Offs[0]
	for _, o := range g.Offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	nr := active.nr
	if gk != nil {
		nr = gk.nr
	}
	threads = parallel.Split(max(1, threads), 2*p.M*n*p.K, minFlopsPerThread)
	panels := (n + nr - 1) / nr
	if threads == 1 {
		gridBlock(gk, p, g, lo, hi, 0, p.M, 0, n, beta, bias, c, ldc, relu)
		return
	}
	items := min(panels, itemsPerThread*threads)
	parallel.For(threads, items, func(i int) {
		j0, j1 := i*panels/items*nr, min(n, (i+1)*panels/items*nr)
		gridBlock(gk, p, g, lo, hi, 0, p.M, j0, j1, beta, bias, c, ldc, relu)
	})
}

// MulPackedAGridPart computes one of parts shares of the rows of C = P * B
// for B read through g, or of C = P * B + bias with a non-nil bias,
// overwriting them, on the calling goroutine, and returns the share's rows
// [i0, i1). Shares are whole row tiles of P, each computed as one thread
// computes all of C (the same bits), as MulPackedAPart does for a matrix B.
func MulPackedAGridPart(p *PackedA, g Grid, part, parts int, bias []float32, c []float32, ldc int) (i0, i1 int) {
	gk := gridKernelFor(p.mr)
	if gk == nil && p.mr != active.mr {
		panic("gemm: PackedA was packed for another kernel")
	}
	if len(g.Offs) != p.K {
		panic("gemm: Grid has a different K than PackedA")
	}
	tiles := (p.M + p.mr - 1) / p.mr
	i0, i1 = part*tiles/parts*p.mr, min(p.M, (part+1)*tiles/parts*p.mr)
	n := g.Rows * g.Cols
	if i0 >= i1 || n == 0 {
		return i0, i1
	}
	if bias != nil {
		_ = bias[i1-1]
	}
	if p.K == 0 {
		if bias != nil {
			fillBias(c[i0*ldc:], ldc, bias[i0:], i1-i0, n)
		} else {
			scaleC(i1-i0, n, 0, c[i0*ldc:], ldc)
		}
		return i0, i1
	}
	lo, hi := g.Offs[0], g.Offs[0]
	for _, o := range g.Offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	gridBlock(gk, p, g, lo, hi, i0, i1, 0, n, 0, bias, c, ldc, false)
	return i0, i1
}

// GridPartTiles is GridTiles for the largest of parts shares of p's rows
// (as MulPackedAGridPart takes them) times n columns.
func GridPartTiles(p *PackedA, parts, n int) int {
	tiles := (p.M + p.mr - 1) / p.mr
	rows := min(p.M, (tiles+parts-1)/parts*p.mr)
	return GridTiles(p, n) / roundUp(p.M, p.mr) * roundUp(rows, p.mr)
}

// gridBlock computes rows [m0, m1) (m0 at a row tile; m1 one too, or p.M)
// and columns [j0, j1) of C with gk (nil: gather every panel
// for the active kernel); lo and hi are the smallest and largest of g.Offs,
// for the bounds of the in-place reads. The loops run the Goto way: k blocks,
// then blocks of mcBlock rows of A (which stay in L2 while the panels of B
// pass), then 16- or 24-wide panels of B, read where they lie. A non-nil
// bias is added by the first k block. With relu, the last k block clamps C
// below at +0 (accRelu; in Go where no grid kernel stores).
func gridBlock(gk *gridKernel, p *PackedA, g Grid, lo, hi, m0, m1, j0, j1 int, beta float32, bias []float32, c []float32, ldc int, relu bool) {
	if p.kc != kcBlock {
		panic("gemm: a streamed PackedA (PackAStreamed) on a Grid")
	}
	mr, nr := active.mr, active.nr
	if gk != nil {
		mr, nr = gk.mr, gk.nr
	}
	var bp *[]float32
	edge := edgePool.Get().(*[12 * 32]float32)
	defer edgePool.Put(edge)
	// The group offsets go to the micro-kernels through function values,
	// so arrays on the stack would escape: a pooled pair instead of two
	// allocations a call.
	dsp := groupOffsPool.Get().(*[2][4]int)
	defer groupOffsPool.Put(dsp)
	ds, seqDs := &dsp[0], &dsp[1]
	*ds, *seqDs = [4]int{}, [4]int{}
	var seq []int // offsets of a gathered panel's rows, for gk
	for j := 1; j < nr/8; j++ {
		seqDs[j] = 8 * j
	}
	for pc := 0; pc < p.K; pc += kcBlock {
		kc := min(kcBlock, p.K-pc)
		acc := pc > 0 || beta != 0
		last := relu && pc+kc == p.K
		mode := modeOf(acc, last)
		var bs []float32 // the bias, for this k block
		if !acc {
			bs = bias
		}
		offs := g.Offs[pc : pc+kc]
		for ic := m0; ic < m1; ic += mcBlock {
			mc := min(mcBlock, m1-ic)
			for jr := j0; jr < j1; jr += nr {
				nn := min(nr, j1-jr)
				// A ragged last panel reads past the grid's last pixel as if
				// it went on (into padding or the next rows, dropped through
				// the scratch tile) where that stays inside Data.
				base, inPlace := 0, gk != nil
				if inPlace {
					base = g.at(jr)
					for j := 0; j < nr/8; j++ {
						ds[j] = g.at(jr+8*j) - base
					}
					inPlace = groupsInPlace(g, lo, hi, base, ds[:], jr, nr/8)
				}
				// run computes rows rows from row ir into dst, adding bias
				// (from row ir on) unless accD or bias is nil.
				var run func(ir, rows int, dst []float32, ldd int, accD accMode, bias []float32)
				if inPlace {
					fn := gk.fnFor(*ds)
					run = func(ir, rows int, dst []float32, ldd int, accD accMode, bias []float32) {
						fn(kc, p.block(ir, pc, kc), g.Data[base:], offs, ds[:], dst, ldd, accD, rows, bias)
					}
				} else {
					if bp == nil {
						bp = getBuf(kcBlock * nr)
						defer bufPool.Put(bp)
					}
					panel := *bp
					gatherPanel(panel, g, offs, jr, nn, nr)
					if gk != nil {
						if seq == nil {
							seq = panelSeq(nr)
						}
						fn := gk.fnFor(*seqDs)
						run = func(ir, rows int, dst []float32, ldd int, accD accMode, bias []float32) {
							fn(kc, p.block(ir, pc, kc), panel, seq[:kc], seqDs[:], dst, ldd, accD, rows, bias)
						}
					} else {
						kr := active
						// rows is a whole number of tiles here: kr.fn stores whole tiles.
						run = func(ir, rows int, dst []float32, ldd int, accD accMode, bias []float32) {
							for t := 0; t < rows/mr; t++ {
								d, accT := dst[t*mr*ldd:], accD&accAdd != 0
								if !accT && bias != nil { // kr.fn adds only C: fill the tile with the bias
									fillBias(d, ldd, bias[t*mr:], mr, nr)
									accT = true
								}
								kr.fn(kc, p.block(ir+t*mr, pc, kc), panel, d, ldd, accT)
								if accD&accRelu != 0 {
									reluRows(d, ldd, mr, nr)
								}
							}
						}
					}
				}
				// A whole panel's rows in one call (a grid kernel stores a
				// last partial tile too), a ragged one of whole groups with
				// a narrow kernel, the rest tile by tile through the scratch
				// tile.
				ir0 := ic
				switch {
				case nn == nr && gk != nil:
					run(ic, mc, c[ic*ldc+jr:], ldc, mode, rowsFrom(bs, ic))
					ir0 = ic + mc
				case gk != nil && nn%8 == 0 && gk.narrow[nn/8] != nil && groupsInPlace(g, lo, hi, base, ds[:], jr, nn/8):
					gk.narrow[nn/8](kc, p.block(ic, pc, kc), g.Data[base:], offs, ds[:], c[ic*ldc+jr:], ldc, mode, mc, rowsFrom(bs, ic))
					ir0 = ic + mc
				case nn == nr && mc >= mr:
					full := mc / mr * mr
					run(ic, full, c[ic*ldc+jr:], ldc, mode, rowsFrom(bs, ic))
					ir0 = ic + full
				}
				for ir := ir0; ir < ic+mc; ir += mr {
					mm := min(mr, m1-ir)
					ci := ir*ldc + jr
					run(ir, mr, edge[:], nr, accOverwrite, nil)
					storeTile(c[ci:], ldc, edge[:], nr, mm, nn, acc, rowsFrom(bs, ir))
					if last {
						reluRows(c[ci:], ldc, mm, nn)
					}
				}
			}
		}
	}
}

// groupsInPlace reports whether the first groups 8-column groups of the
// panel at column jr (base = g.at(jr), ds their distances from it) can be
// read in place: none crosses the end of an output row, and every tap's
// read stays inside g.Data (lo and hi: the smallest and largest offset).
func groupsInPlace(g Grid, lo, hi, base int, ds []int, jr, groups int) bool {
	for j := 0; j < groups; j++ {
		if g.Cols != g.RowStride && (jr+8*j)%g.Cols+8 > g.Cols {
			return false
		}
	}
	return base+lo >= 0 && base+ds[groups-1]+hi+8 <= len(g.Data)
}

// gatherPanel writes the kc x nr panel of columns [j0, j0+nn) of g's rows
// offs, k-major, zero beyond nn.
func gatherPanel(panel []float32, g Grid, offs []int, j0, nn, nr int) {
	for j := 0; j < nr; j++ {
		if j >= nn {
			for p := range offs {
				panel[p*nr+j] = 0
			}
			continue
		}
		at := g.at(j0 + j)
		for p, o := range offs {
			panel[p*nr+j] = g.Data[o+at]
		}
	}
}

// panelSeqs holds, per panel width nr, the offsets i*nr of a gathered
// panel's kcBlock rows: the same for every call, made once instead of at
// each gathered panel (2 KiB of garbage each).
var panelSeqs [65]atomic.Pointer[[]int]

func panelSeq(nr int) []int {
	if p := panelSeqs[nr].Load(); p != nil {
		return *p
	}
	seq := make([]int, kcBlock)
	for i := range seq {
		seq[i] = i * nr
	}
	panelSeqs[nr].Store(&seq)
	return seq
}
