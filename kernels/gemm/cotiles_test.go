package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCoTileMatchesGEMM: every tile width 1..14, channel counts that fill
// blocks of 32 and leave the last one partial, tap counts within one k
// block and over several, with a bias and without: CoTile gives bit for bit
// what the GEMM tiles give for the same taps gathered into a matrix, and
// writes nothing outside its channels' pixels.
func TestCoTileMatchesGEMM(t *testing.T) {
	if !HasCoTiles() {
		t.Skip("no CoTile kernels on this machine")
	}
	r := rand.New(rand.NewPCG(41, 42))
	tile := make([]float32, CoTileFloats)
	cases := 0
	// 1, 16, 45, 48 and 80 end in a block of at most 16 channels (the half
	// kernels), the others in a wider one; every tile width for each.
	for _, m := range []int{1, 16, 20, 32, 45, 48, 64, 80, 96} {
		for _, k := range []int{1, 9, 27, 256, 300, 600} {
			for px := 1; px <= CoTileMax; px++ {
				cases++
				x := randMat(r, 4000)
				offs := make([]int, k)
				span := 0
				for i := range offs {
					offs[i] = r.IntN(3000)
					span = max(span, offs[i]+1)
				}
				base := r.IntN(4000 - span - px + 1)
				a := Matrix{randMat(r, m*k), k, false}
				pc := PackCo(m, k, a)
				pa := PackA(m, k, 1, a)
				b := make([]float32, k*px)
				for tt := 0; tt < k; tt++ {
					for i := 0; i < px; i++ {
						b[tt*px+i] = x[base+offs[tt]+i]
					}
				}
				for _, withBias := range []bool{false, true} {
					var bias []float32
					if withBias {
						bias = randMat(r, m)
					}
					want := make([]float32, m*px)
					if bias != nil {
						MulPackedABias(pa, px, Matrix{b, px, false}, bias, want, px, 1)
					} else {
						MulPackedA(pa, px, Matrix{b, px, false}, 0, want, px, 1)
					}
					plane := px + 3
					out := make([]float32, m*plane+5)
					for i := range out {
						out[i] = 42
					}
					for q := 0; q < pc.Blocks(); q++ {
						CoTile(pc, q, px, x, base, offs, span, bias, out, 2+32*q*plane, plane, tile)
					}
					what := fmt.Sprintf("m=%d k=%d px=%d bias=%v", m, k, px, withBias)
					for i, v := range out {
						j, col := (i-2)/plane, (i-2)%plane
						if i < 2 || j >= m || col >= px {
							if v != 42 {
								t.Fatalf("%s: wrote out[%d] outside the tile", what, i)
							}
							continue
						}
						if w := want[j*px+col]; math.Float32bits(v) != math.Float32bits(w) {
							t.Fatalf("%s: channel %d pixel %d = %v, GEMM %v", what, j, col, v, w)
						}
					}
				}
			}
		}
	}
	if cases != 9*6*CoTileMax {
		t.Fatalf("%d cases", cases)
	}
}

// BenchmarkCoTile is CoTile's multiply-adds per ns on a ResNet-50 layer's
// taps (3x3 over 128 channels) in cache, 14 pixels by 32 channels a tile.
func BenchmarkCoTile(b *testing.B) {
	if !HasCoTiles() {
		b.Skip("no CoTile kernels on this machine")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const k, px = 1152, 14
	x := randMat(r, 128*30*30)
	offs := make([]int, k)
	for i := range offs {
		offs[i] = i/9*900 + i%9/3*30 + i%3
	}
	pc := PackCo(128, k, Matrix{randMat(r, 128*k), k, false})
	out := make([]float32, 128*px)
	tile := make([]float32, CoTileFloats)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for q := 0; q < 4; q++ {
			CoTile(pc, q, px, x, 0, offs, 128*900-900+2*30+3, nil, out, 32*q*px, px, tile)
		}
	}
	b.ReportMetric(float64(b.N)*128*k*px/float64(b.Elapsed().Nanoseconds()), "MAC/ns")
}

// BenchmarkCoTileHalf times the last block of a 48-channel layer (16
// channels; 3x3 taps over 48 input channels, 14 pixels a tile) on the half
// kernels and on the 32-channel ones with 16 lanes masked off, alternating
// in blocks of 1000 tiles: ns a tile each way and their ratio.
func BenchmarkCoTileHalf(b *testing.B) {
	if !HasCoTiles() {
		b.Skip("no CoTile kernels on this machine")
	}
	defer func() { noHalfCoTiles = false }()
	r := rand.New(rand.NewPCG(1, 2))
	const m, k, px = 48, 432, 14
	x := randMat(r, 48*30*30)
	offs := make([]int, k)
	for i := range offs {
		offs[i] = i/9*900 + i%9/3*30 + i%3
	}
	pc := PackCo(m, k, Matrix{randMat(r, m*k), k, false})
	out := make([]float32, m*px)
	tile := make([]float32, CoTileFloats)
	var spent [2]time.Duration // half kernels, full ones
	for i := 0; i < b.N; i++ {
		for way := range spent {
			noHalfCoTiles = way == 1
			t0 := time.Now()
			for range 1000 {
				CoTile(pc, 1, px, x, 0, offs, 48*900-900+2*30+3, nil, out, 32*px, px, tile)
			}
			spent[way] += time.Since(t0)
		}
	}
	half, full := float64(spent[0].Nanoseconds())/float64(1000*b.N), float64(spent[1].Nanoseconds())/float64(1000*b.N)
	b.ReportMetric(half, "half-ns/tile")
	b.ReportMetric(full, "full-ns/tile")
	b.ReportMetric(half/full, "half/full")
}
