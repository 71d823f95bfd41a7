package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/kernels/parallel"
)

func randMat(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// reference computes alpha*A*B + beta*C in float64.
func reference(m, n, k int, alpha float32, a, b Matrix, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a.at(i, p)) * float64(b.at(p, j))
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func check(t *testing.T, what string, m, n, k int, got []float32, ldc int, want []float64) {
	t.Helper()
	// float32 accumulation over k terms of N(0,1) products: error ~ sqrt(k) * eps * |terms|.
	tol := 1e-5 * math.Sqrt(float64(k)+1) * 4
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g, w := float64(got[i*ldc+j]), want[i*n+j]
			if math.Abs(g-w) > tol*(1+math.Abs(w)) || math.IsNaN(g) {
				t.Fatalf("%s m=%d n=%d k=%d: C[%d,%d] = %v, want %v", what, m, n, k, i, j, g, w)
			}
		}
	}
}

func withEachKernel(t *testing.T, f func(t *testing.T)) {
	saved := active
	defer func() { active = saved }()
	for _, k := range kernels() {
		active = k
		t.Run(k.name, f)
	}
}

func TestSgemm(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		sizes := [][3]int{{1, 1, 1}, {5, 7, 3}, {6, 16, 8}, {12, 32, 256}, {13, 33, 257}, {145, 70, 300}, {1, 1000, 512}, {300, 2, 40}, {7, 2100, 9}, {64, 64, 0}, {7, 24, 5}, {6, 25, 5}, {13, 49, 70},
			// narrow products (N <= 8): the in-place rows path, with ragged rows and columns
			{256, 8, 256}, {17, 8, 33}, {64, 5, 300}, {9, 1, 7}, {8, 8, 1}, {41, 3, 520}}
		for _, s := range sizes {
			m, n, k := s[0], s[1], s[2]
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}} {
					for _, threads := range []int{1, 2} {
						lda, ldb, ldc := k+1, n+2, n+3
						if tr[0] {
							lda = m + 1
						}
						if tr[1] {
							ldb = k + 2
						}
						a := Matrix{randMat(r, max(m, k)*lda+1), lda, tr[0]}
						b := Matrix{randMat(r, max(n, k)*ldb+1), ldb, tr[1]}
						c := randMat(r, m*ldc)
						want := reference(m, n, k, ab[0], a, b, ab[1], c, ldc)
						Sgemm(m, n, k, ab[0], a, b, ab[1], c, ldc, threads)
						check(t, fmt.Sprintf("trans=%v alpha,beta=%v threads=%d", tr, ab, threads), m, n, k, c, ldc, want)
					}
				}
			}
		}
	})
}

func TestPacked(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, s := range [][3]int{{64, 3136, 576}, {13, 50, 600}, {1, 1000, 2048}, {300, 49, 1152}} {
			m, n, k := s[0], s[1], s[2]
			for _, threads := range []int{1, 2} {
				a := Matrix{randMat(r, m*k), k, false}
				b := Matrix{randMat(r, k*n), n, false}
				c := make([]float32, m*n)
				want := reference(m, n, k, 1, a, b, 0, c, n)
				MulPackedA(PackA(m, k, 1, a), n, b, 0, c, n, threads)
				check(t, "packedA", m, n, k, c, n, want)
				for i := range c {
					c[i] = 0
				}
				wantB := reference(m, n, k, 2, a, b, 0, c, n)
				MulPackedB(m, 2, a, PackB(k, n, b), 0, c, n, threads)
				check(t, "packedB", m, n, k, c, n, wantB)
			}
		}
	})
}

// TestMulPackedABias: C = P*B + bias equals, bit for bit, C filled with the
// bias and MulPackedA with beta 1, on shapes with ragged row and column tiles,
// few rows (B read in place), K over one k block, and 1-2 threads.
func TestMulPackedABias(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, s := range [][3]int{{64, 3025, 16}, {13, 50, 600}, {5, 70, 9}, {12, 33, 27}, {150, 169, 64}, {7, 2100, 1}, {30, 40, 0}, {40, 300, 200}} {
			m, n, k := s[0], s[1], s[2]
			for _, threads := range []int{1, 2} {
				a := Matrix{randMat(r, m*k+1), k, false}
				b := Matrix{randMat(r, k*n+1), n, false}
				checkBiasAsFill(t, r, PackA(m, k, 1, a), n, b, n+3, threads, fmt.Sprintf("m=%d n=%d k=%d threads=%d", m, n, k, threads))
				// k blocks chained (accChain), the Relu on the last
				if p := PackAStreamed(m, k, 1, a); p != nil {
					checkBiasRelu(t, r, p, n, b, n+3, threads, fmt.Sprintf("streamed m=%d n=%d k=%d threads=%d", m, n, k, threads))
				}
			}
		}
	})
}

// BenchmarkSgemm reports GFLOP/s for square and convolution-shaped products
// (ResNet-50's 1x1 layers on 56x56, 256 -> 64 as 64x3136x256, and its 3x3
// layers on 7x7 as 512x49x4608), at 1 and 2 threads: on the 2-vCPU VM the
// 2-thread rate tells the CPUs' placement (1.6-2.1x the 1-thread rate on
// separate cores, 1.0x when they share one).
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{1024, 1024, 1024}, {64, 12544, 147}, {256, 3136, 64}, {64, 3136, 256}, {512, 784, 1152}, {2048, 49, 4608}, {512, 49, 4608}} {
		m, n, k := s[0], s[1], s[2]
		a := Matrix{randMat(r, m*k), k, false}
		bm := Matrix{randMat(r, k*n), n, false}
		c := make([]float32, m*n)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/t%d", active.name, m, n, k, threads), func(b *testing.B) {
				pa := PackA(m, k, 1, a)
				for i := 0; i < b.N; i++ {
					MulPackedA(pa, n, bm, 0, c, n, threads)
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkNarrow times attention-shaped products (probabilities x V, head
// size 8) on the narrow path and on the tiled path.
func BenchmarkNarrow(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{256, 8, 256}, {256, 5, 256}} {
		m, n, k := s[0], s[1], s[2]
		a := Matrix{randMat(r, m*k), k, false}
		bm := Matrix{randMat(r, k*n), n, false}
		c := make([]float32, m*n)
		b.Run(fmt.Sprintf("narrow/%dx%dx%d", m, n, k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Sgemm(m, n, k, 1, a, bm, 0, c, n, 1)
			}
			b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("tiled/%dx%dx%d", m, n, k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(m, n, k, aSource{mat: a, alpha: 1}, bSource{mat: bm}, 0, c, n, 1, nil, false)
			}
			b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestRowRemainders covers every row count modulo each kernel's MR (the
// last row tile partial, stored by the row-tile kernels or the scratch tile),
// B read in place (at most directTiles row tiles) or packed, B rows far apart (a
// pointwise convolution's input, one feature map a row; packed row by row
// when N is long), K within one k block and over it, ragged N: C = P*B (beta
// 0), C + P*B (beta 1) against float64, and the bias form bit for bit
// against a bias-filled C and beta 1.
func TestRowRemainders(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		var ms []int
		for m := 1; m <= 38; m++ {
			ms = append(ms, m)
		}
		ms = append(ms, 143, 145, 149, 150, 299)
		for _, m := range ms {
			for _, k := range []int{1, 7, 32, 300} {
				for _, ns := range [][2]int{{16, 16}, {50, 50}, {33, 2000}, {96, 5000}, {40, 1024}, {1030, 9000}} {
					n, ldb := ns[0], ns[1]
					if n > 1000 && (k > 32 || m > 40) { // B packed row by row: a few shapes suffice
						continue
					}
					threads := 1 + m%2
					a := Matrix{randMat(r, m*k), k, false}
					b := Matrix{randMat(r, k*ldb), ldb, false}
					p := PackA(m, k, 1, a)
					ldc := n + 5
					c := randMat(r, m*ldc)
					want := reference(m, n, k, 1, a, b, 1, c, ldc)
					MulPackedA(p, n, b, 1, c, ldc, threads)
					what := fmt.Sprintf("beta 1 ldb=%d threads=%d", ldb, threads)
					check(t, what, m, n, k, c, ldc, want)
					c = randMat(r, m*ldc)
					keep := append([]float32(nil), c...)
					want = reference(m, n, k, 1, a, b, 0, c, ldc)
					Sgemm(m, n, k, 1, a, b, 0, c, ldc, threads)
					check(t, "Sgemm beta 0 "+what, m, n, k, c, ldc, want)
					for i := 0; i < m; i++ { // columns past n stay as they were
						for j := n; j < ldc; j++ {
							if c[i*ldc+j] != keep[i*ldc+j] {
								t.Fatalf("m=%d n=%d k=%d: C[%d,%d] past N was written", m, n, k, i, j)
							}
						}
					}
					checkBiasAsFill(t, r, p, n, b, ldc, threads, fmt.Sprintf("bias m=%d n=%d k=%d %s", m, n, k, what))
				}
			}
		}
	})
}

// TestPackBByRow: B packed row by row (rows far apart, many panels) gives
// the panels packed column by column would, for both SIMD panel widths,
// with a ragged last panel zero-padded.
func TestPackBByRow(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, nr := range []int{16, 32} {
		kc, nc, ldb := 9, byRowPanels*nr+5, farRows+3
		b := Matrix{randMat(r, (kc+2)*ldb), ldb, false}
		if !byRow(b, kc, nc, nr) {
			t.Fatalf("nr=%d: the shape does not take the row-by-row packing", nr)
		}
		got := randMat(r, kc*roundUp(nc, nr))
		packB(got, b, 2, kc, 7, nc, nr)
		for j := 0; j < roundUp(nc, nr); j++ {
			for p := 0; p < kc; p++ {
				var want float32
				if j < nc {
					want = b.at(2+p, 7+j)
				}
				if g := got[j/nr*kc*nr+p*nr+j%nr]; g != want {
					t.Fatalf("nr=%d: packed B[%d, %d] = %v, want %v", nr, p, j, g, want)
				}
			}
		}
	}
}

// checkBiasAsFill: MulPackedABias gives the bits of C filled with a random
// bias and then MulPackedA with beta 1, and leaves C's columns past n as
// they were.
func checkBiasAsFill(t *testing.T, r *rand.Rand, p *PackedA, n int, b Matrix, ldc, threads int, what string) {
	t.Helper()
	m := p.M
	bias := randMat(r, m)
	want, got := make([]float32, m*ldc), randMat(r, m*ldc)
	copy(want, got)
	fillBias(want, ldc, bias, m, n)
	MulPackedA(p, n, b, 1, want, ldc, threads)
	MulPackedABias(p, n, b, bias, got, ldc, threads)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s: C[%d] = %v, filled bias then beta 1 gives %v", what, i, got[i], want[i])
		}
	}
	checkBiasRelu(t, r, p, n, b, ldc, threads, what)
}

// checkBiasRelu: MulPackedABiasRelu gives MulPackedABias's sums clamped as
// a Relu after them would, bit for bit, and leaves C's columns past n alone.
func checkBiasRelu(t *testing.T, r *rand.Rand, p *PackedA, n int, b Matrix, ldc, threads int, what string) {
	t.Helper()
	bias := randMat(r, p.M)
	want, got := make([]float32, p.M*ldc), randMat(r, p.M*ldc)
	copy(want, got)
	MulPackedABias(p, n, b, bias, want, ldc, threads)
	reluRows(want, ldc, p.M, n)
	MulPackedABiasRelu(p, n, b, bias, got, ldc, threads)
	checkRelu(t, want, got, what)
}

// checkRelu compares C from a Relu variant with want (the plain product
// then reluRows), bit for bit, and fails unless some sums were clamped and
// some kept (the test would not see a missing or misplaced clamp).
func checkRelu(t *testing.T, want, got []float32, what string) {
	t.Helper()
	clamped, kept := 0, 0
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s, Relu: C[%d] = %v, the product then a Relu gives %v", what, i, got[i], want[i])
		}
		if want[i] == 0 {
			clamped++
		} else if want[i] > 0 {
			kept++
		}
	}
	if len(want) > 64 && (clamped == 0 || kept == 0) {
		t.Fatalf("%s, Relu: %d sums clamped, %d kept: the case does not test the clamp", what, clamped, kept)
	}
}

// TestGemvPacked: one row times a packed B (gemvPacked) gives the tiled
// path's bits (run with the same packed B), for every kernel: widths around
// the panel sizes with a ragged last panel, K within one k block and over
// several, alpha, beta 0, 1 and other, A stored transposed, 1 and 2 threads;
// and C's columns past N untouched.
func TestGemvPacked(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		if active.gemv == nil {
			t.Skip("no gemv routine")
		}
		r := rand.New(rand.NewPCG(31, 32))
		for _, n := range []int{1, 7, 8, 16, 17, 31, 32, 33, 64, 65, 100, 1000} {
			for _, k := range []int{1, 5, 256, 300, 600} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}} {
					for _, trans := range []bool{false, true} {
						for _, threads := range []int{1, 2} {
							bm := Matrix{randMat(r, k*n), n, false}
							p := PackB(k, n, bm)
							a := Matrix{randMat(r, k), k, false}
							if trans {
								a = Matrix{a.Data, 1, true} // 1 x k stored as k x 1
							}
							ldc := n + 3
							c0 := randMat(r, ldc)
							got := append([]float32(nil), c0...)
							want := append([]float32(nil), c0...)
							MulPackedB(1, ab[0], a, p, ab[1], got, ldc, threads)
							run(1, n, k, aSource{mat: a, alpha: ab[0]}, bSource{packed: p}, ab[1], want, ldc, threads, nil, false)
							for j := range want {
								if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
									t.Fatalf("n=%d k=%d alpha=%v beta=%v trans=%v threads=%d: C[%d] = %v, the tiles give %v", n, k, ab[0], ab[1], trans, threads, j, got[j], want[j])
								}
							}
						}
					}
				}
			}
		}
	})
}

// One row of A times B read in place (Sgemm with m = 1) gives the tiles'
// bits: every column (whole panels, 8-wide chunks, the last few through a
// copy), k over several blocks, alpha and beta, A stored transposed, B rows
// wider than n, one and two threads; and no element of C outside the row's
// n columns changes.
func TestGemvInPlace(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		if active.gemvRows == nil {
			t.Skip("no gemvRows routine")
		}
		r := rand.New(rand.NewPCG(33, 34))
		for _, n := range []int{1, 3, 7, 8, 9, 16, 17, 24, 31, 32, 33, 40, 64, 65, 100, 256, 1000} {
			for _, k := range []int{1, 5, 8, 64, 256, 300, 600} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}} {
					for _, trans := range []bool{false, true} {
						for _, threads := range []int{1, 2} {
							ldb := n + r.IntN(3)
							bm := Matrix{randMat(r, (k-1)*ldb+n), ldb, false} // B's data ends at its last element
							a := Matrix{randMat(r, k), k, false}
							if trans {
								a = Matrix{a.Data, 1, true}
							}
							c0 := randMat(r, n+5)
							got := append([]float32(nil), c0...)
							want := append([]float32(nil), c0...)
							Sgemm(1, n, k, ab[0], a, bm, ab[1], got[:n], n, threads)
							run(1, n, k, aSource{mat: a, alpha: ab[0]}, bSource{mat: bm}, ab[1], want, n, threads, nil, false)
							for j := range want {
								if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
									t.Fatalf("n=%d k=%d ldb=%d alpha=%v beta=%v trans=%v threads=%d: C[%d] = %v, the tiles give %v", n, k, ldb, ab[0], ab[1], trans, threads, j, got[j], want[j])
								}
							}
						}
					}
				}
			}
		}
	})
}

// A product on one thread allocates nothing once the packing buffers
// exist: the narrow, tiled, in-place and packed one-row paths. (The kernel
// struct passing 128 bytes made the closures that captured a copy of it
// move it to the heap on every call: 756 more allocations per stories260K
// run.)
func TestProductsDoNotAllocate(t *testing.T) {
	// One thread even under ONNXQ_FORCE_SPLIT (make test's second pass):
	// a split loop's closure is an allocation, and not what this asks.
	parallel.ForceSplit(1)
	defer parallel.ForceSplit(0)
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(35, 36))
		for _, s := range [][3]int{{16, 8, 64}, {20, 40, 30}, {1, 40, 300}, {1, 5, 7}} {
			m, n, k := s[0], s[1], s[2]
			a, b := Matrix{randMat(r, m*k), k, false}, Matrix{randMat(r, k*n), n, false}
			c := make([]float32, m*n)
			p := PackB(k, n, b)
			Sgemm(m, n, k, 1, a, b, 0, c, n, 1)
			MulPackedB(m, 1, a, p, 0, c, n, 1)
			if allocs := testing.AllocsPerRun(20, func() { Sgemm(m, n, k, 1, a, b, 0, c, n, 1) }); allocs != 0 {
				t.Errorf("Sgemm %dx%dx%d: %.1f allocations a call", m, n, k, allocs)
			}
			if allocs := testing.AllocsPerRun(20, func() { MulPackedB(m, 1, a, p, 0, c, n, 1) }); allocs != 0 {
				t.Errorf("MulPackedB %dx%dx%d: %.1f allocations a call", m, n, k, allocs)
			}
		}
	})
}

// The buffer stack hands out the smallest free buffer that fits, and grows
// the largest when none does, so that buffers of mixed sizes are reused.
func TestBufStackBestFit(t *testing.T) {
	var s bufStack
	for _, n := range []int{8, 1000, 100} {
		p := new([]float32)
		*p = make([]float32, n)
		s.Put(p)
	}
	if p := s.get(50); cap(*p) != 100 || len(*p) != 50 {
		t.Errorf("get(50): cap %d len %d, want the 100-float buffer", cap(*p), len(*p))
	}
	if p := s.get(5000); cap(*p) < 5000 || len(s.free) != 1 || cap(*s.free[0]) != 8 {
		t.Errorf("get(5000): cap %d, %d left; want the 1000-float buffer grown and the 8-float one left", cap(*p), len(s.free))
	}
	if p := s.get(4); cap(*p) != 8 || len(s.free) != 0 {
		t.Errorf("get(4): cap %d, %d left", cap(*p), len(s.free))
	}
	if p := s.get(3); cap(*p) < 3 {
		t.Errorf("get(3) on an empty stack: cap %d", cap(*p))
	}
}

// BenchmarkGemvInPlace: one row times B read in place, shapes of a
// decoder's attention step (one query against a KV cache: scores times V
// for heads of 8 and 64, Q times K transposed), gemvInPlace against the
// tiles: ns per product.
func BenchmarkGemvInPlace(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][2]int{{256, 8}, {8, 256}, {256, 64}, {64, 256}, {1024, 64}, {64, 1024}} {
		k, n := s[0], s[1]
		bm := Matrix{randMat(r, k*n), n, false}
		a := Matrix{randMat(r, k), k, false}
		c := make([]float32, n)
		b.Run(fmt.Sprintf("in-place/1x%dx%d", n, k), func(b *testing.B) {
			for b.Loop() {
				Sgemm(1, n, k, 1, a, bm, 0, c, n, 1)
			}
		})
		b.Run(fmt.Sprintf("tiles/1x%dx%d", n, k), func(b *testing.B) {
			for b.Loop() {
				run(1, n, k, aSource{mat: a, alpha: 1}, bSource{mat: bm}, 0, c, n, 1, nil, false)
			}
		})
	}
}

// BenchmarkGemvPacked: one row times a packed classifier matrix (1280 x
// 1000, MobileNetV2's; 2048 x 1000, ResNet-50's), gemvPacked against the
// tiles: GFLOP/s.
func BenchmarkGemvPacked(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][2]int{{1280, 1000}, {2048, 1000}, {288, 768}} {
		k, n := s[0], s[1]
		p := PackB(k, n, Matrix{randMat(r, k*n), n, false})
		a := Matrix{randMat(r, k), k, false}
		c := make([]float32, n)
		b.Run(fmt.Sprintf("gemv/%dx%d", k, n), func(b *testing.B) {
			for b.Loop() {
				MulPackedB(1, 1, a, p, 0, c, n, 1)
			}
			b.ReportMetric(float64(2*k*n*b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
		})
		b.Run(fmt.Sprintf("tiles/%dx%d", k, n), func(b *testing.B) {
			for b.Loop() {
				run(1, n, k, aSource{mat: a, alpha: 1}, bSource{packed: p}, 0, c, n, 1, nil, false)
			}
			b.ReportMetric(float64(2*k*n*b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
		})
	}
}

// TestPackAStreamed: a product with A packed in k blocks of streamedKC
// (B read in place, or packed row by row where its rows are far apart and
// N long) gives PackA's product bit for bit, with and without a bias, for
// every row count modulo MR, k within a kcBlock and ragged N, on 1 and 2
// threads; with beta 1 it is the product within float tolerance. It fails
// if the later k blocks add their sums instead of continuing the chains.
func TestPackAStreamed(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		ran := 0
		for _, m := range []int{1, 5, 12, 13, 16, 24, 31, 40, 64, 72} {
			for _, k := range []int{33, 64, 100, 144, 256} {
				for _, ns := range [][2]int{{16, 16}, {50, 50}, {97, 3136}, {3136, 3136}} {
					n, ldb := ns[0], ns[1]
					a := Matrix{randMat(r, m*k), k, false}
					s := PackAStreamed(m, k, 1, a)
					if s == nil {
						continue
					}
					ran++
					p := PackA(m, k, 1, a)
					b := Matrix{randMat(r, k*ldb), ldb, false}
					bias := randMat(r, m)
					ldc := n + 3
					for _, threads := range []int{1, 2} {
						what := fmt.Sprintf("m=%d k=%d n=%d ldb=%d threads=%d", m, k, n, ldb, threads)
						want, got := make([]float32, m*ldc), make([]float32, m*ldc)
						MulPackedA(p, n, b, 0, want, ldc, threads)
						MulPackedA(s, n, b, 0, got, ldc, threads)
						sameBits(t, what, m, n, got, want, ldc)
						MulPackedABias(p, n, b, bias, want, ldc, threads)
						MulPackedABias(s, n, b, bias, got, ldc, threads)
						sameBits(t, "bias "+what, m, n, got, want, ldc)
					}
					if n > 100 {
						continue
					}
					c := randMat(r, m*ldc)
					ref := reference(m, n, k, 1, a, b, 1, c, ldc)
					MulPackedA(s, n, b, 1, c, ldc, 1)
					check(t, fmt.Sprintf("beta 1 m=%d k=%d n=%d", m, k, n), m, n, k, c, ldc, ref)
				}
			}
		}
		if active.rows != nil && ran == 0 {
			t.Fatal("no case took a streamed packing")
		}
	})
}

func sameBits(t *testing.T, what string, m, n int, got, want []float32, ldc int) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if g, w := got[i*ldc+j], want[i*ldc+j]; math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("%s: C[%d,%d] = %v, PackA's product %v", what, i, j, g, w)
			}
		}
	}
}

// TestAInPlace: products whose A is read in place (kernel.rowsA, for the
// whole tiles of rows) give the packed path's bits, on row counts with and
// without a partial last tile, K over one k block (the blocks after the
// first add to C), beta 0, 1 and 0.5, B in place and packed (MulPackedB),
// 1 and 2 threads; alpha 0.5 and widths with a ragged last panel (33, 49)
// take the packed path and agree trivially.
func TestAInPlace(t *testing.T) {
	withEachKernel(t, func(t *testing.T) {
		if active.rowsA == nil {
			t.Skip("no in-place A kernel")
		}
		defer func() { noAInPlace = false }()
		r := rand.New(rand.NewPCG(9, 10))
		cases := 0
		for _, m := range []int{12, 13, 24, 37, 144, 156, 197, 300} {
			for _, k := range []int{1, 5, 64, 197, 300, 513} {
				for _, n := range []int{32, 64, 96, 33, 49} {
					for _, ab := range [][2]float32{{1, 0}, {1, 1}, {1, 0.5}, {0.5, 0}} {
						threads := 1 + cases%2
						lda, ldc := k+3, n+5
						a := Matrix{randMat(r, m*lda), lda, false}
						b := Matrix{randMat(r, k*n), n, false}
						c0 := randMat(r, m*ldc)
						var got [2][]float32
						for path := range got {
							noAInPlace = path == 1
							c := append([]float32(nil), c0...)
							if cases%3 == 0 {
								MulPackedB(m, ab[0], a, PackB(k, n, b), ab[1], c, ldc, threads)
							} else {
								Sgemm(m, n, k, ab[0], a, b, ab[1], c, ldc, threads)
							}
							got[path] = c
						}
						for i := range got[0] {
							if math.Float32bits(got[0][i]) != math.Float32bits(got[1][i]) {
								t.Fatalf("m=%d n=%d k=%d alpha,beta=%v threads=%d: C[%d] = %v in place, %v packed", m, n, k, ab, threads, i, got[0][i], got[1][i])
							}
						}
						cases++
					}
				}
			}
		}
		t.Logf("%d products compared", cases)
	})
}
