package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestMulPackedAGrid(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		// rows, cols, row stride: rows a multiple of 8 wide (read in place
		// panel by panel), contiguous grids, 8-wide rows whose panels span two
		// rows, and ragged widths that gather.
		narrowed := 0
		grids := [][3]int{{4, 32, 34}, {8, 8, 10}, {3, 16, 16}, {5, 13, 15}, {1, 50, 50}, {7, 24, 27}, {2, 3, 5}}
		for _, gs := range grids {
			for _, mk := range [][2]int{{16, 144}, {6, 9}, {13, 300}, {1, 1}, {64, 576}, {160, 20}, {292, 300}} {
				for _, beta := range []float32{0, 1, -0.5} {
					for _, threads := range []int{1, 2} {
						m, k := mk[0], mk[1]
						rows, cols, stride := gs[0], gs[1], gs[2]
						n := rows * cols
						span := (rows-1)*stride + cols
						data := randMat(r, span+k*7+3)
						offs := make([]int, k)
						bm := make([]float32, k*n) // the same B, written out
						for p := range offs {
							offs[p] = r.IntN(len(data) - span + 1)
							for j := 0; j < n; j++ {
								bm[p*n+j] = data[offs[p]+j/cols*stride+j%cols]
							}
						}
						lda, ldc := k+1, n+3
						a := Matrix{randMat(r, m*lda), lda, false}
						c := randMat(r, m*ldc)
						want := reference(m, n, k, 1, a, Matrix{bm, n, false}, beta, c, ldc)
						grid := Grid{Data: data, Offs: offs, Rows: rows, Cols: cols, RowStride: stride}
						// The 4-row packing where the kernel has one, on a copy of C.
						if p := PackANarrow(m, k, a); p != nil {
							narrowed++
							c4 := append([]float32(nil), c...)
							MulPackedAGrid(p, grid, beta, c4, ldc, threads)
							check(t, fmt.Sprintf("narrow grid %v beta=%v threads=%d", gs, beta, threads), m, n, k, c4, ldc, want)
						}
						if beta == 0 { // with a bias instead: the sum a bias-filled C and beta 1 give, bit for bit
							checkGridBias(t, r, PackANarrow(m, k, a), grid, m, n, ldc, threads)
							checkGridBias(t, r, PackA(m, k, 1, a), grid, m, n, ldc, threads)
						}
						MulPackedAGrid(PackA(m, k, 1, a), grid, beta, c, ldc, threads)
						check(t, fmt.Sprintf("grid %v beta=%v threads=%d", gs, beta, threads), m, n, k, c, ldc, want)
					}
				}
			}
		}
		if len(active.grid) > 0 && active.mr != 4 && narrowed == 0 {
			t.Fatal("no case ran the 4-row grid kernel")
		}
	})
}

// checkGridBias compares MulPackedAGridBias with a C filled with the bias
// and MulPackedAGrid with beta 1, bit for bit (p nil: nothing to check).
func checkGridBias(t *testing.T, r *rand.Rand, p *PackedA, g Grid, m, n, ldc, threads int) {
	t.Helper()
	if p == nil {
		return
	}
	bias := randMat(r, m)
	want, got := make([]float32, m*ldc), randMat(r, m*ldc)
	copy(want, got)
	fillBias(want, ldc, bias, m, n)
	MulPackedAGrid(p, g, 1, want, ldc, threads)
	MulPackedAGridBias(p, g, bias, got, ldc, threads)
	what := fmt.Sprintf("grid %dx%d (stride %d) m=%d k=%d mr=%d threads=%d", g.Rows, g.Cols, g.RowStride, m, len(g.Offs), p.mr, threads)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s: C[%d] = %v, filled bias then beta 1 gives %v", what, i, got[i], want[i])
		}
	}
	reluRows(want, ldc, m, n)
	MulPackedAGridBiasRelu(p, g, bias, got, ldc, threads)
	checkRelu(t, want, got, what)
}

// TestMulPackedAGridPart: shares of the rows, with and without a bias, give
// the bits MulPackedAGrid gives on one thread, for both packings, and cover
// every row once.
func TestMulPackedAGridPart(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, gs := range [][3]int{{4, 32, 34}, {8, 8, 10}, {5, 13, 15}} {
			for _, mk := range [][2]int{{64, 576}, {13, 300}, {6, 9}, {1, 20}} {
				m, k := mk[0], mk[1]
				rows, cols, stride := gs[0], gs[1], gs[2]
				n := rows * cols
				span := (rows-1)*stride + cols
				data := randMat(r, span+k*7+3)
				offs := make([]int, k)
				for p := range offs {
					offs[p] = r.IntN(len(data) - span + 1)
				}
				grid := Grid{Data: data, Offs: offs, Rows: rows, Cols: cols, RowStride: stride}
				a := Matrix{randMat(r, m*k), k, false}
				bias := randMat(r, m)
				for _, p := range []*PackedA{PackA(m, k, 1, a), PackANarrow(m, k, a)} {
					if p == nil {
						continue
					}
					for _, bs := range [][]float32{nil, bias} {
						want := make([]float32, m*n)
						if bs != nil {
							MulPackedAGridBias(p, grid, bs, want, n, 1)
						} else {
							MulPackedAGrid(p, grid, 0, want, n, 1)
						}
						for _, parts := range []int{1, 2, 3, 5} {
							got := make([]float32, m*n)
							for i := range got {
								got[i] = float32(math.NaN())
							}
							next := 0
							for part := 0; part < parts; part++ {
								i0, i1 := MulPackedAGridPart(p, grid, part, parts, bs, got, n)
								if i0 != next || i1 < i0 {
									t.Fatalf("m=%d parts=%d: part %d has rows [%d, %d), want from %d", m, parts, part, i0, i1, next)
								}
								next = i1
							}
							if next != m {
								t.Fatalf("m=%d parts=%d: the shares end at row %d", m, parts, next)
							}
							for i := range want {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("grid %v m=%d k=%d mr=%d parts=%d bias=%v: c[%d] = %v, one call gives %v", gs, m, k, p.mr, parts, bs != nil, i, got[i], want[i])
								}
							}
						}
					}
				}
			}
		}
	})
}
