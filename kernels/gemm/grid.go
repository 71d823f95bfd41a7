package gemm

import "github.com/onnxq/onnxq/kernels/parallel"

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

// MulPackedAGrid computes C = P * B + beta * C for B read through g (K =
// len(g.Offs) rows, Rows*Cols columns). The columns of a panel whose two
// halves each lie in one input row are read in place by the offsets kernel;
// other panels, and machines without that kernel, gather the panel first.
func MulPackedAGrid(p *PackedA, g Grid, beta float32, c []float32, ldc int, threads int) {
	if p.mr != active.mr {
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
		scaleC(p.M, n, beta, c, ldc)
		return
	}
	if beta != 0 && beta != 1 {
		scaleC(p.M, n, beta, c, ldc)
		beta = 1
	}
	kr := active
	lo, hi := g.Offs[0], g.Offs[0]
	for _, o := range g.Offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	threads = parallel.Split(max(1, threads), 2*p.M*n*p.K, minFlopsPerThread)
	panels := (n + kr.nr - 1) / kr.nr
	if threads == 1 {
		gridBlock(kr, p, g, lo, hi, 0, n, beta, c, ldc)
		return
	}
	items := min(panels, itemsPerThread*threads)
	parallel.For(threads, items, func(i int) {
		j0, j1 := i*panels/items*kr.nr, min(n, (i+1)*panels/items*kr.nr)
		gridBlock(kr, p, g, lo, hi, j0, j1, beta, c, ldc)
	})
}

// gridBlock computes columns [j0, j1) of C; lo and hi are the smallest and
// largest of g.Offs, for the bounds of the in-place reads.
func gridBlock(kr kernel, p *PackedA, g Grid, lo, hi, j0, j1 int, beta float32, c []float32, ldc int) {
	mr, nr := kr.mr, kr.nr
	var bp *[]float32
	var edge [12 * 32]float32
	for jr := j0; jr < j1; jr += nr {
		nn := min(nr, j1-jr)
		// The offsets kernel reads 8 consecutive floats at base and at base+d1.
		base, d1, inPlace := 0, 0, false
		if kr.offs != nil && nn == nr {
			base = g.at(jr)
			d1 = g.at(jr+8) - base
			inPlace = (g.Cols == g.RowStride || (jr%g.Cols+8 <= g.Cols && (jr+8)%g.Cols+8 <= g.Cols)) &&
				base+lo >= 0 && base+d1+hi+8 <= len(g.Data)
		}
		for pc := 0; pc < p.K; pc += kcBlock {
			kc := min(kcBlock, p.K-pc)
			acc := pc > 0 || beta != 0
			offs := g.Offs[pc : pc+kc]
			var panel []float32
			if !inPlace {
				if bp == nil {
					bp = getBuf(kcBlock * nr)
					defer bufPool.Put(bp)
				}
				panel = *bp
				gatherPanel(panel, g, offs, jr, nn, nr)
			}
			// Full row tiles in one call when the panel is whole, then
			// the rest one by one through the scratch tile.
			ir0 := 0
			if full := p.M / mr; full > 0 && nn == nr {
				aPanel, dst := p.block(0, pc, kc), c[jr:]
				switch {
				case inPlace:
					kr.offs(kc, aPanel, g.Data[base:], offs, d1, dst, ldc, acc, full)
				case kr.tiles != nil:
					kr.tiles(kc, aPanel, panel, dst, ldc, acc, full)
				default:
					for t := 0; t < full; t++ {
						kr.fn(kc, aPanel[t*mr*kc:], panel, dst[t*mr*ldc:], ldc, acc)
					}
				}
				ir0 = full * mr
			}
			for ir := ir0; ir < p.M; ir += mr {
				mm := min(mr, p.M-ir)
				aPanel := p.block(ir, pc, kc)
				ci := ir*ldc + jr
				if inPlace {
					kr.offs(kc, aPanel, g.Data[base:], offs, d1, edge[:], nr, false, 1)
				} else {
					kr.fn(kc, aPanel, panel, edge[:], nr, false)
				}
				for i := 0; i < mm; i++ {
					d := c[ci+i*ldc : ci+i*ldc+nn]
					s := edge[i*nr : i*nr+nn]
					if acc {
						for j := range d {
							d[j] += s[j]
						}
					} else {
						copy(d, s)
					}
				}
			}
		}
	}
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
