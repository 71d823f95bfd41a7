// Package gemm is onnxq's single-precision matrix multiply: packed, cache-blocked
// SGEMM in the Goto/BLIS style, with SIMD micro-kernels chosen at run time
// (AVX-512, AVX2+FMA, or portable Go) and work split across the shared worker
// pool of kernels/parallel.
//
// All matrices are row-major. C (m x n) = A (m x k) * B (k x n) + beta * C.
package gemm

import (
	"sync"

	"github.com/onnxq/onnxq/kernels/parallel"
)

// Cache blocking: a kc x NR sliver of B stays in L1 while the micro-kernel runs;
// an mc x kc block of A stays in L2; a kc x nc block of B in L2/L3.
const (
	kcBlock = 256
	mcBlock = 144 // a multiple of every MR (4, 6, 8 and 12)
	ncBlock = 2048
)

// kernel computes one MR x NR tile: C = A_panel * B_panel (+ C when acc),
// with A_panel kc x MR (k-major) and B_panel kc x NR (k-major); ldc is in elements.
// accMode is what a tile kernel does with C (kernel.rows).
type accMode uint8

const (
	// accOverwrite stores the product (plus the bias, when there is one).
	accOverwrite accMode = iota
	// accAdd adds the product to C: C + (a chain of FMAs from zero), the
	// sum a k block after the first of kcBlock takes.
	accAdd
	// accChain starts each output's chain of FMAs from its value in C
	// (a k block's partial sums) and stores as accOverwrite does: a product
	// split into k blocks this way gives, bit for bit, the sums of one
	// block (see PackAStreamed).
	accChain
	// accRelu, or-ed into a mode, clamps each stored sum below at +0 as a
	// Relu after the product would: max(0, x), NaN and -0 passing through.
	// Only the last k block's stores carry it.
	accRelu accMode = 4
)

// modeOf is accAdd for acc, else accOverwrite, with accRelu when relu.
func modeOf(acc, relu bool) accMode {
	m := accOverwrite
	if acc {
		m = accAdd
	}
	if relu {
		m |= accRelu
	}
	return m
}

// reluRows clamps rows x cols of c (rows ldc apart) below at +0 as accRelu
// does, for the stores the tile kernels do not make.
func reluRows(c []float32, ldc, rows, cols int) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+cols]
		for j, v := range row {
			if v < 0 {
				row[j] = 0
			}
		}
	}
}

type kernel struct {
	name   string
	mr, nr int
	fn     func(kc int, a, b, c []float32, ldc int, acc bool)
	// strided, when set, reads the B panel in place (row p at b[p*ldb:]) instead
	// of from a packed copy.
	strided func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool)
	// half, when set, computes only the first halfNR columns of a tile, for
	// the right edge of C (N = 49 leaves one column in the last 16-wide
	// panel); it reads B like strided.
	half   func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool)
	halfNR int
	// rows8, when set, computes an 8 x 8 tile from A and B read in place
	// (no packing), for products at most 8 columns wide; see narrow.
	rows8 func(kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool)
	// small, when set, computes rows (1-4) rows by cols (1-smallNR) columns of C
	// from A and B read in place, row i of A at a[i*lda:] and row p of B at
	// b[p*ldb:]: C = A * B, or C + A * B when acc, summed as fn sums a tile
	// (see small.go).
	small   func(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int, acc bool)
	smallNR int // nr, the columns of a packed B's panel
	// small6, when set, is small on up to six rows (see smallPanels).
	small6 func(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int, acc bool)
	// rows, when set, computes the first rows rows of a column of tiles
	// down C in one call: consecutive A panels with the same B panel, whose
	// row p is at b[p*ldb:] (ldb NR when packed), a last partial tile stored
	// row by row like the rest. With accAdd it adds the product to C; else
	// a non-nil bias (from the first row on) is added to each row, and with
	// accChain the sums start from C's values instead of zero (see accMode).
	rows func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32)
	// rowsA, when set, is rows with A read in place (row i at a[i*lda:])
	// instead of packed, for rows a multiple of mr.
	rowsA func(kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32)
	// gemv computes one row over panels of packed B (kc x nr each, one
	// after another): y[j] = x * B[:, j] (+ y[j] when acc), each a chain
	// over k as fn sums a tile's outputs, so the bits are fn's.
	gemv func(kc int, x, b []float32, panels int, y []float32, acc bool)
	// gemvRows is gemv over B read in place (row p at b[p*ldb:], panel i
	// at column i*nr), and gemvRows8 the same over 8-column panels, for
	// the columns after the last whole nr-wide panel; both sum as gemv.
	gemvRows  func(kc int, x, b []float32, ldb, panels int, y []float32, acc bool)
	gemvRows8 func(kc int, x, b []float32, ldb, panels int, y []float32, acc bool)
	// grid are the kernels that read B through offsets (see Grid), for A
	// packed with this kernel's mr or with another.
	grid []gridKernel
}

// active is the kernel in use; chosen by init in the arch file, switchable in tests.
var active = portableKernel

// KernelName names the micro-kernel in use, for benchmarks and reports.
func KernelName() string { return active.name }

// Matrix is a row-major view: element (i, j) at Data[i*Stride+j], or at
// Data[j*Stride+i] when Trans is set (the matrix is stored transposed).
type Matrix struct {
	Data   []float32
	Stride int
	Trans  bool
}

func (m Matrix) at(i, j int) float32 {
	if m.Trans {
		return m.Data[j*m.Stride+i]
	}
	return m.Data[i*m.Stride+j]
}

// Sgemm computes C = alpha * A * B + beta * C for an m x k A and a k x n B, using
// up to threads goroutines.
func Sgemm(m, n, k int, alpha float32, a, b Matrix, beta float32, c []float32, ldc int, threads int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if narrow(m, n, k, alpha, a, b, beta, c, ldc, threads) {
		return
	}
	if smallFits(&active, m, n, k, alpha, a, b, beta, threads) {
		small(&active, m, n, k, a, b, beta != 0, c, ldc)
		return
	}
	if m == 1 && !b.Trans && active.gemvRows != nil {
		gemvInPlace(n, k, alpha, a, b, beta, c, threads)
		return
	}
	run(m, n, k, aSource{mat: a, alpha: alpha}, bSource{mat: b}, beta, c, ldc, threads, nil, false)
}

// PackedA is a left-hand matrix packed once for the active kernel (e.g. convolution
// weights) and multiplied many times.
type PackedA struct {
	M, K int
	data []float32 // per k block: all MR panels, each kc x MR
	mr   int
	kc   int // the k block: kcBlock, or streamedKC (PackAStreamed)
}

// PackA packs alpha * A (m x k).
func PackA(m, k int, alpha float32, a Matrix) *PackedA {
	return packAWith(m, k, alpha, a, active.mr, kcBlock)
}

// PackAStreamed packs alpha * A (m x k) for products whose B is read in
// place with its rows far apart (a pointwise convolution's input, each row
// a whole feature map): in k blocks of streamedKC, so that a column of tiles
// reads that many of B's rows at once instead of up to kcBlock. Hundreds of
// concurrent streams, each advancing 128 bytes a tile, defeat the hardware
// prefetchers; 32 they follow. The blocks after the first continue the
// chains of FMAs from the partial sums in C (accChain), so with beta 0 the
// product has PackA's bits. It returns nil where PackA's packing is all
// there is: m too large for B to be read in place (it is packed then), k
// under streamedMinK or over one kcBlock (whose blocks add), or a kernel
// without a tile-column routine.
func PackAStreamed(m, k int, alpha float32, a Matrix) *PackedA {
	if !StreamedFits(m, k) {
		return nil
	}
	return packAWith(m, k, alpha, a, active.mr, streamedKC)
}

// StreamedFits reports whether PackAStreamed packs an m x k matrix (it
// returns nil otherwise).
func StreamedFits(m, k int) bool {
	return m <= directTiles*active.mr && k >= streamedMinK && k <= kcBlock && active.rows != nil
}

// streamedKC is PackAStreamed's k block, and streamedMinK the least k it
// takes: up to 96 rows of B at once the prefetchers still follow (paired, 1x1
// convolutions on 52x52-56x56, ms in blocks of 32 / whole: k 64 1.08-1.17,
// 96 0.91-1.02, 128 0.81-0.83, 144 0.74, 256 0.82-0.92).
const (
	streamedKC   = 32
	streamedMinK = 128
)

// StreamsB reports whether a product with a streamed A (PackAStreamed)
// reads a B whose rows are ldb floats apart in place: rows farRows apart
// and more are packed row by row anyway (packB), and there the k blocks only
// add passes over C (1x1 96->24 on 112x112: 1.04x the time).
func StreamsB(ldb int) bool { return ldb < farRows }

// packAWith packs alpha * A in panels of mr rows, k blocks of kc.
func packAWith(m, k int, alpha float32, a Matrix, mr, kc int) *PackedA {
	mp := roundUp(m, mr)
	p := &PackedA{M: m, K: k, mr: mr, kc: kc, data: make([]float32, mp*k)}
	for pc := 0; pc < k; pc += kc {
		packA(p.data[pc*mp:], a, alpha, 0, m, pc, min(kc, k-pc), mr)
	}
	return p
}

// panel returns the packed A for rows [i0, i0+mc) of k block [pc, pc+kc).
func (p *PackedA) block(i0, pc, kc int) []float32 {
	mp := roundUp(p.M, p.mr)
	return p.data[pc*mp+i0*kc:]
}

// PackedB is a right-hand matrix packed once (e.g. MatMul or Gemm weights).
type PackedB struct {
	K, N int
	data []float32 // per k block: all NR panels, each kc x NR
	nr   int
}

// PackB packs B (k x n).
func PackB(k, n int, b Matrix) *PackedB {
	nr := active.nr
	np := roundUp(n, nr)
	p := &PackedB{K: k, N: n, nr: nr, data: make([]float32, np*k)}
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		packB(p.data[pc*np:], b, pc, kc, 0, n, nr)
	}
	return p
}

func (p *PackedB) block(j0, pc, kc int) []float32 {
	np := roundUp(p.N, p.nr)
	return p.data[pc*np+j0*kc:]
}

// MulPackedA computes C = P * B + beta * C with P packed by PackA.
func MulPackedA(p *PackedA, n int, b Matrix, beta float32, c []float32, ldc int, threads int) {
	if p.mr != active.mr {
		panic("gemm: PackedA was packed for another kernel")
	}
	if p.M == 0 || n == 0 {
		return
	}
	if p.K == 0 {
		scaleC(p.M, n, beta, c, ldc)
		return
	}
	run(p.M, n, p.K, aSource{packed: p}, bSource{mat: b}, beta, c, ldc, threads, nil, false)
}

// MulPackedABias computes C = P * B + bias, bias[i] added to row i of C,
// overwriting C: the sum a C filled with the bias and MulPackedA with beta 1
// would give, bit for bit, without the pass that fills it.
func MulPackedABias(p *PackedA, n int, b Matrix, bias []float32, c []float32, ldc int, threads int) {
	mulPackedABias(p, n, b, bias, c, ldc, threads, false)
}

// MulPackedABiasRelu computes C = max(0, P * B + bias) as MulPackedABias
// followed by a Relu over C would, bit for bit, in the micro-kernels' stores
// instead of a pass over C: a convolution with a Relu after it.
func MulPackedABiasRelu(p *PackedA, n int, b Matrix, bias []float32, c []float32, ldc int, threads int) {
	mulPackedABias(p, n, b, bias, c, ldc, threads, true)
}

func mulPackedABias(p *PackedA, n int, b Matrix, bias []float32, c []float32, ldc int, threads int, relu bool) {
	if p.mr != active.mr {
		panic("gemm: PackedA was packed for another kernel")
	}
	if p.M == 0 || n == 0 {
		return
	}
	_ = bias[p.M-1]
	if p.K == 0 {
		fillBias(c, ldc, bias, p.M, n)
		if relu {
			reluRows(c, ldc, p.M, n)
		}
		return
	}
	run(p.M, n, p.K, aSource{packed: p}, bSource{mat: b}, 0, c, ldc, threads, bias, relu)
}

// MulPackedAPart computes one of parts shares of the rows of C = P * B, or of
// C = P * B + bias with a non-nil bias, overwriting them, on the calling
// goroutine, and returns the share's rows [i0, i1). Shares are whole row
// tiles of P, and each is computed as one thread computes all of C, so the
// shares, split over threads, give the bits one thread gives. A caller that
// splits output channels this way (a convolution on a small map, whose
// pixels make few column panels) then runs its epilogue on those rows.
func MulPackedAPart(p *PackedA, part, parts, n int, b Matrix, bias []float32, c []float32, ldc int) (i0, i1 int) {
	if p.mr != active.mr {
		panic("gemm: PackedA was packed for another kernel")
	}
	tiles := (p.M + p.mr - 1) / p.mr
	i0, i1 = part*tiles/parts*p.mr, min(p.M, (part+1)*tiles/parts*p.mr)
	if i0 >= i1 || n == 0 {
		return i0, i1
	}
	if p.K == 0 {
		if bias != nil {
			fillBias(c[i0*ldc:], ldc, bias[i0:], i1-i0, n)
		} else {
			scaleC(i1-i0, n, 0, c[i0*ldc:], ldc)
		}
		return i0, i1
	}
	block(active, i0, i1, 0, n, p.K, aSource{packed: p}, bSource{mat: b}, 0, c, ldc, bias, false)
	return i0, i1
}

// PartsOf is how many shares of at least minTiles row tiles each
// MulPackedAPart can split p into (at least 1).
func PartsOf(p *PackedA, minTiles int) int {
	return max(1, (p.M+p.mr-1)/p.mr/max(1, minTiles))
}

// chainEdge is kernel.rows for rows x nn of C (nn < NR, the ragged right
// edge of a streamed product) through scratch tiles of NR columns: each row
// tile's columns are copied in (for accChain and accAdd), computed from the B panel
// (packed, zeros past nn) and copied back.
func chainEdge(kr kernel, kc int, a, b []float32, ldb int, c []float32, ldc int, mode accMode, rows, nn int, bias, edge []float32) {
	mr, nr := kr.mr, kr.nr
	for ir := 0; ir < rows; ir += mr {
		mm := min(mr, rows-ir)
		if mode != accOverwrite {
			for i := 0; i < mm; i++ {
				copy(edge[i*nr:i*nr+nn], c[(ir+i)*ldc:])
			}
		}
		kr.rows(kc, a[ir*kc:], b, ldb, edge, nr, mode, mm, rowsFrom(bias, ir))
		for i := 0; i < mm; i++ {
			copy(c[(ir+i)*ldc:(ir+i)*ldc+nn], edge[i*nr:i*nr+nn])
		}
	}
}

// fillBias sets rows x cols of c (rows ldc apart) to bias[i] in row i.
func fillBias(c []float32, ldc int, bias []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+cols]
		for j := range row {
			row[j] = bias[i]
		}
	}
}

// MulPackedB computes C = alpha * A * P + beta * C with P packed by PackB.
func MulPackedB(m int, alpha float32, a Matrix, p *PackedB, beta float32, c []float32, ldc int, threads int) {
	if p.nr != active.nr {
		panic("gemm: PackedB was packed for another kernel")
	}
	if m == 0 || p.N == 0 {
		return
	}
	if p.K == 0 {
		scaleC(m, p.N, beta, c, ldc)
		return
	}
	if m == 1 && active.gemv != nil {
		gemvPacked(alpha, a, p, beta, c, threads)
		return
	}
	if smallPackedFits(&active, m, alpha, a, p, beta) {
		smallPacked(&active, m, a, p, beta != 0, c, ldc)
		return
	}
	run(m, p.N, p.K, aSource{mat: a, alpha: alpha}, bSource{packed: p}, beta, c, ldc, threads, nil, false)
}

// gemvPacked is MulPackedB for one row of A (a classifier's last layer, a
// decoder's step, a batch-1 recurrence): the tile kernels would compute MR
// rows, all but one padding, where this streams B's panels once with one
// multiply-add per element, with the same k blocks and per output the same
// chain of FMAs as the tiles (the same bits). BenchmarkGemvPacked, AVX-512,
// GFLOP/s gemv / tiles: 1280 x 1000 (MobileNetV2's classifier) 13.0-13.2 /
// 5.9-6.8, 288 x 768 (in cache) 40-44 / 7.2; paired whole models: the zoo
// LSTM 0.96x, MobileNetV2 0.99x.
func gemvPacked(alpha float32, a Matrix, p *PackedB, beta float32, c []float32, threads int) {
	kr := &active // a pointer: see run
	n, k, nr := p.N, p.K, p.nr
	if beta != 0 && beta != 1 {
		scaleC(1, n, beta, c, n)
		beta = 1
	}
	xb := getBuf(k)
	defer bufPool.Put(xb)
	x := (*xb)[:k]
	for i := range x { // alpha * A, as packA writes it
		x[i] = alpha * a.at(0, i)
	}
	panels := (n + nr - 1) / nr
	threads = parallel.Split(max(1, threads), 2*n*k, minFlopsPerThread)
	if threads == 1 {
		gemvPackedPanels(kr, x, p, beta != 0, c, 0, panels)
		return
	}
	items := min(panels, itemsPerThread*threads)
	parallel.For(threads, items, func(i int) {
		gemvPackedPanels(kr, x, p, beta != 0, c, i*panels/items, (i+1)*panels/items)
	})
}

// gemvPackedPanels computes panels [p0, p1) of gemvPacked's row.
func gemvPackedPanels(kr *kernel, x []float32, p *PackedB, acc0 bool, c []float32, p0, p1 int) {
	n, k, nr := p.N, p.K, p.nr
	full := n / nr
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		acc := pc > 0 || acc0
		blk := p.block(0, pc, kc)
		if f1 := min(p1, full); f1 > p0 {
			kr.gemv(kc, x[pc:pc+kc], blk[p0*nr*kc:], f1-p0, c[p0*nr:f1*nr], acc)
		}
		if p1 > full { // the ragged last panel, through a scratch row
			edge := edgePool.Get().(*[12 * 32]float32)
			t := edge[:nr]
			copy(t, c[full*nr:n])
			kr.gemv(kc, x[pc:pc+kc], blk[full*nr*kc:], 1, t, acc)
			copy(c[full*nr:n], t)
			edgePool.Put(edge)
		}
	}
}

// gemvInPlace is Sgemm for one row of A with B read in place: a decoder's
// step, where attention multiplies one query row by the keys and its
// probabilities by the values of a KV cache, per head and layer. The tiles
// would pack A to MR rows, all but one padding, and B (kc x n, for that
// one row); here B streams once, one multiply-add per element, with the
// same k blocks and per output the same chain of FMAs as the tiles (the
// same bits). BenchmarkGemvInPlace, AVX-512, ns tiles / in place (medians
// of 3): 1 x 8 x 256 (a head of 8 and 256 cached positions, times V) 4130 /
// 402, 1 x 64 x 256 3856 / 554, 1 x 64 x 1024 14420 / 1931, 1 x 256 x 64 (Q
// times K transposed) 2681 / 750, 1 x 256 x 8 504 / 136.
func gemvInPlace(n, k int, alpha float32, a, b Matrix, beta float32, c []float32, threads int) {
	if beta != 0 && beta != 1 {
		scaleC(1, n, beta, c, n)
		beta = 1
	}
	x := a.Data[:k]
	if alpha != 1 || a.Trans {
		xb := getBuf(k)
		defer bufPool.Put(xb)
		x = (*xb)[:k]
		for i := range x { // alpha * A, as packA writes it
			x[i] = alpha * a.at(0, i)
		}
	}
	nr := active.nr
	panels := (n + nr - 1) / nr // the columns after the whole panels count as one more
	threads = parallel.Split(max(1, threads), 2*n*k, minFlopsPerThread)
	if threads == 1 || panels == 1 {
		gemvPanelsInPlace(x, b, beta != 0, c, n, 0, panels)
		return
	}
	items := min(panels, itemsPerThread*threads)
	parallel.For(threads, items, func(i int) {
		gemvPanelsInPlace(x, b, beta != 0, c, n, i*panels/items, (i+1)*panels/items)
	})
}

// gemvPanelsInPlace computes the columns of panels [p0, p1) of c = x * B
// (+ c when acc): the whole nr-wide panels with kernel.gemvRows, those
// after them with gemvRows8, the last n % 8 through an 8-wide copy.
func gemvPanelsInPlace(x []float32, b Matrix, acc bool, c []float32, n, p0, p1 int) {
	kr := &active
	nr, k, ldb := kr.nr, len(x), b.Stride
	full := n / nr
	chunks := (n - full*nr) / 8
	rest := n - full*nr - 8*chunks
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		acc := pc > 0 || acc
		xs, bb := x[pc:pc+kc], b.Data[pc*ldb:]
		if f1 := min(p1, full); f1 > p0 {
			kr.gemvRows(kc, xs, bb[p0*nr:], ldb, f1-p0, c[p0*nr:f1*nr], acc)
		}
		if p1 <= full {
			continue
		}
		j := full * nr
		if chunks > 0 {
			kr.gemvRows8(kc, xs, bb[j:], ldb, chunks, c[j:j+8*chunks], acc)
			j += 8 * chunks
		}
		if rest > 0 {
			tb := getBuf(8 * kc)
			t := (*tb)[:8*kc]
			for p := 0; p < kc; p++ {
				row := t[8*p : 8*p+8]
				clear(row[copy(row, bb[p*ldb+j:p*ldb+n]):])
			}
			edge := edgePool.Get().(*[12 * 32]float32)
			y := edge[:8]
			copy(y, c[j:n])
			kr.gemvRows8(kc, xs, t, 8, 1, y, acc)
			copy(c[j:n], y)
			edgePool.Put(edge)
			bufPool.Put(tb)
		}
	}
}

type aSource struct {
	mat    Matrix
	alpha  float32
	packed *PackedA
}

type bSource struct {
	mat    Matrix
	packed *PackedB
}

// Parallel work: a thread takes part only with at least minFlopsPerThread of
// it (about 4 us), a region on the pool costing 0.4-0.7 us; each
// thread's share is cut into a few items claimed as threads come free.
const (
	minFlopsPerThread = 1 << 18
	itemsPerThread    = 2
)

// run splits C into column (or row) ranges of whole tiles, claimed by up to
// threads goroutines of the shared pool, and multiplies; a non-nil bias (with
// beta 0) is added to C's rows, and with relu C is clamped as a Relu after
// it would (see accRelu).
func run(m, n, k int, a aSource, b bSource, beta float32, c []float32, ldc int, threads int, bias []float32, relu bool) {
	// A pointer, not a copy: the closures below capture kr, and Go
	// captures a variable over 128 bytes by reference, moving it to the
	// heap on every call (the kernel struct grew past that in session 40,
	// and stories260K's runs allocated 82 KB more each).
	kr := &active
	threads = parallel.Split(max(1, threads), 2*m*n*k, minFlopsPerThread)
	colTiles := (n + kr.nr - 1) / kr.nr
	rowTiles := (m + kr.mr - 1) / kr.mr
	if threads == 1 {
		block(*kr, 0, m, 0, n, k, a, b, beta, c, ldc, bias, relu)
		return
	}
	// Each item packs its own share of an operand that is not prepacked, and
	// all of the other one: split the side whose operand is prepacked (the
	// rows of A when B is, e.g. MatMul weights), or else the side with more tiles.
	byCols := colTiles >= rowTiles || colTiles >= 4*threads
	switch {
	case b.packed != nil && a.packed == nil && rowTiles >= threads:
		byCols = false
	case a.packed != nil && b.packed == nil && colTiles >= threads:
		byCols = true
	}
	if byCols {
		items := min(colTiles, itemsPerThread*threads)
		parallel.For(threads, items, func(i int) {
			j0, j1 := i*colTiles/items*kr.nr, min(n, (i+1)*colTiles/items*kr.nr)
			block(*kr, 0, m, j0, j1, k, a, b, beta, c, ldc, bias, relu)
		})
		return
	}
	// Row ranges start on whole MR tiles, which is also where the panels of a
	// prepacked A start.
	items := min(rowTiles, itemsPerThread*threads)
	parallel.For(threads, items, func(i int) {
		i0, i1 := i*rowTiles/items*kr.mr, min(m, (i+1)*rowTiles/items*kr.mr)
		block(*kr, i0, i1, 0, n, k, a, b, beta, c, ldc, bias, relu)
	})
}

// directTiles is the most row tiles for which block reads B in place; it
// packs B instead when B's rows are at least farRows floats apart and packB
// packs it row by row.
const (
	directTiles = 6
	farRows     = 8192
)

var bufPool bufStack

// bufStack keeps the packing buffers between calls. A sync.Pool drops what
// it holds at every garbage collection, and the next products then took
// their buffers (up to 2 MiB for a packed B) from the heap again: garbage,
// and fresh pages whose first touch is a page fault (10-15 us each on a
// VM). It holds at most as many buffers as were ever out at once.
type bufStack struct {
	mu   sync.Mutex
	free []*[]float32
}

// get returns a buffer of n floats: the smallest free one that holds n, or
// else the largest, grown. Taking the last one freed whatever its size made
// a decoder step, whose products alternate between a few floats (one row
// of A) and thousands (a panel), reallocate on most calls.
func (s *bufStack) get(n int) *[]float32 {
	s.mu.Lock()
	best := -1
	for i, p := range s.free {
		if best < 0 {
			best = i
			continue
		}
		c, b := cap(*p), cap(*s.free[best])
		if (c >= n && (b < n || c < b)) || (b < n && c > b) {
			best = i
		}
	}
	var p *[]float32
	if best >= 0 {
		p = s.free[best]
		last := len(s.free) - 1
		s.free[best] = s.free[last]
		s.free[last] = nil
		s.free = s.free[:last]
	}
	s.mu.Unlock()
	if p == nil {
		p = new([]float32)
	}
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func (s *bufStack) Put(p *[]float32) {
	s.mu.Lock()
	s.free = append(s.free, p)
	s.mu.Unlock()
}

// edgePool holds the scratch tiles partial tiles are computed into. The
// micro-kernels are called through function values, so an array on the stack
// would escape and cost a 1.5 KiB allocation per call.
var edgePool = sync.Pool{New: func() any { return new([12 * 32]float32) }}

// groupOffsPool holds gridBlock's group offsets (see there).
var groupOffsPool = sync.Pool{New: func() any { return new([2][4]int) }}

// storeTile writes the top-left mm x nn of a scratch tile (rows ldt apart)
// into c (rows ldc apart), adding to it when acc, else adding bias[i] to row
// i when bias is not nil.
func storeTile(c []float32, ldc int, tile []float32, ldt, mm, nn int, acc bool, bias []float32) {
	for i := 0; i < mm; i++ {
		if !acc && bias != nil {
			dst, src, bv := c[i*ldc:i*ldc+nn], tile[i*ldt:i*ldt+nn], bias[i]
			for j := range dst {
				dst[j] = src[j] + bv
			}
			continue
		}
		dst, src := c[i*ldc:i*ldc+nn], tile[i*ldt:i*ldt+nn]
		if acc {
			for j := range dst {
				dst[j] += src[j]
			}
		} else {
			copy(dst, src)
		}
	}
}

// getBuf returns a packing buffer of n floats; bufPool.Put gives it back.
func getBuf(n int) *[]float32 { return bufPool.get(n) }

// block computes rows [i0, i1) x columns [j0, j1) of C, looping the Goto way:
// columns in nc blocks, k in kc blocks (packing B), rows in mc blocks (packing A),
// then NR x MR tiles with the micro-kernel. A non-nil bias (indexed by C's
// row) is added by the first k block. With relu the last k block's
// tile-column kernels clamp as they store (accRelu), and the stores they do
// not make are clamped after them.
func block(kr kernel, i0, i1, j0, j1, k int, a aSource, b bSource, beta float32, c []float32, ldc int, bias []float32, relu bool) {
	mr, nr := kr.mr, kr.nr
	var bp, ap *[]float32
	if b.packed == nil {
		bp = getBuf(kcBlock * roundUp(min(ncBlock, j1-j0), nr))
		defer bufPool.Put(bp)
	}
	if a.packed == nil {
		ap = getBuf(kcBlock * roundUp(min(mcBlock, i1-i0), mr))
		defer bufPool.Put(ap)
	}
	edge := edgePool.Get().(*[12 * 32]float32) // scratch tile for partial tiles (largest MR x NR)
	defer edgePool.Put(edge)
	if beta != 0 && beta != 1 {
		for i := i0; i < i1; i++ {
			row := c[i*ldc+j0 : i*ldc+j1]
			for j := range row {
				row[j] *= beta
			}
		}
	}
	// A streamed A (PackAStreamed) comes in k blocks of its own; they chain
	// (accChain), and only the last adds the bias.
	kcb, chain := kcBlock, false
	if a.packed != nil && a.packed.kc != kcBlock {
		kcb, chain = a.packed.kc, true
	}
	for jc := j0; jc < j1; jc += ncBlock {
		nc := min(ncBlock, j1-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			acc := pc > 0 || beta != 0
			last := relu && pc+kc == k
			var bs []float32 // the bias, for this k block
			mode := accOverwrite
			switch {
			case chain:
				if pc > 0 {
					mode = accChain
				} else if beta != 0 {
					mode = accAdd
				}
				if beta == 0 && pc+kc == k { // the chains' last block
					bs = bias
				}
			case acc:
				mode = accAdd
			default:
				bs = bias
			}
			// With at most two row tiles, each B panel is used at most twice:
			// reading it in place costs less than packing it, unless a bias
			// must be filled into C first for a kernel that does not add it
			// (2-2.5x: scalar stores, then vector loads of them). Kernels
			// that store the bias and partial tiles themselves read it in
			// place for up to directTiles tiles, from L1 after the first
			// (pointwise convolutions with M 13-36 on 28x28 and 56x56 maps:
			// 0.75-0.9x the time), unless B's rows are a multiple of 4 KiB
			// apart: those map to the same few L1 sets and evict each other
			// (1.03-1.04x). But B's rows over farRows floats apart, which
			// packB packs row by row (a pointwise convolution's input, maps
			// of 104x104 and up, just written by the layer before), are
			// packed: that reads them faster than the kernel's kc rows at
			// once (1x1 32->12, 32->16 on 112x112: 0.5-0.85x the time, 32->32
			// on 104x104 in YOLO: 0.88x); rows closer (96->24 on 56x56) are
			// still read in place faster.
			tiles := 2
			switch {
			case kr.rows == nil:
			case byRow(b.mat, kc, nc, nr):
				tiles = 0
			case b.mat.Stride%1024 != 0:
				tiles = directTiles
			}
			direct := b.packed == nil && !b.mat.Trans && kr.strided != nil && i1-i0 <= tiles*mr && (bs == nil || kr.rows != nil)
			var bBlock []float32
			switch {
			case b.packed != nil:
				bBlock = b.packed.block(jc, pc, kc)
			case !direct:
				packB(*bp, b.mat, pc, kc, jc, nc, nr)
				bBlock = *bp
			}
			for ic := i0; ic < i1; ic += mcBlock {
				mc := min(mcBlock, i1-ic)
				// A read in place (kernel.rowsA) for the whole tiles of
				// rows where the block is at most aInPlacePanels whole
				// panels wide: only the rows past the last whole tile are
				// packed, as one panel. (Attention's probabilities times V,
				// 197 x 197 by 197 x 64: 0.84x the time; 128 x 64 by 64 x
				// 128 0.95x.) A wider block reads A once a panel, and a
				// packed A is one stream where in place it is twelve: the
				// zoo transformer's linear layers (8 to 32 panels) took
				// 1.03-1.08x the time in place. A ragged last panel through
				// a scratch column gained nothing on 197 x 64 by 64 x 197
				// (its 32 columns of FMAs cost what packing A saved). Not
				// where A's rows are a multiple of 4 KiB apart: the tile's
				// 12 rows then share a few L1 sets (128 x 1024 by 1024 x
				// 256: 1.20-1.24x the packed time; rows 1536, 768 or 512
				// floats apart 0.97-0.98x).
				whole := 0
				if kr.rowsA != nil && a.packed == nil && !a.mat.Trans && a.alpha == 1 && nc%nr == 0 && nc <= aInPlacePanels*nr && a.mat.Stride%1024 != 0 && !noAInPlace {
					whole = mc - mc%mr
				}
				var aBlock []float32
				switch {
				case a.packed != nil:
					aBlock = a.packed.block(ic, pc, kc)
				case whole > 0:
					if whole < mc {
						packA(*ap, a.mat, 1, ic+whole, mc-whole, pc, kc, mr)
						aBlock = *ap
					}
				default:
					packA(*ap, a.mat, a.alpha, ic, mc, pc, kc, mr)
					aBlock = *ap
				}
				for jr := 0; jr < nc; jr += nr {
					nn := min(nr, nc-jr)
					var bPanel []float32
					ldb := nr
					inPlace := direct && nn == nr
					switch {
					case inPlace:
						bPanel, ldb = b.mat.Data[pc*b.mat.Stride+jc+jr:], b.mat.Stride
					case direct: // the ragged right edge: pack just this panel
						packB(*bp, b.mat, pc, kc, jc+jr, nn, nr)
						bPanel = *bp
					default:
						bPanel = bBlock[jr*kc:]
					}
					rmode := mode
					if last {
						rmode |= accRelu
					}
					if whole > 0 { // nn == nr: every panel is whole
						kr.rowsA(kc, a.mat.Data[ic*a.mat.Stride+pc:], a.mat.Stride, bPanel, ldb, c[ic*ldc+jc+jr:], ldc, rmode, whole, rowsFrom(bs, ic))
						if whole < mc {
							kr.rows(kc, aBlock, bPanel, ldb, c[(ic+whole)*ldc+jc+jr:], ldc, rmode, mc-whole, rowsFrom(bs, ic+whole))
						}
						continue
					}
					if nn == nr && kr.rows != nil {
						kr.rows(kc, aBlock, bPanel, ldb, c[ic*ldc+jc+jr:], ldc, rmode, mc, rowsFrom(bs, ic))
						continue
					}
					if chain { // the ragged right edge, through a scratch tile
						chainEdge(kr, kc, aBlock, bPanel, ldb, c[ic*ldc+jc+jr:], ldc, mode, mc, nn, rowsFrom(bs, ic), edge[:])
						if last {
							reluRows(c[ic*ldc+jc+jr:], ldc, mc, nn)
						}
						continue
					}
					for ir := 0; ir < mc; ir += mr {
						mm := min(mr, mc-ir)
						aPanel := aBlock[ir*kc:]
						ci := (ic+ir)*ldc + jc + jr
						if mm == mr && nn == nr {
							accT := acc
							if bs != nil { // these kernels add only C: fill the tile with the bias
								fillBias(c[ci:], ldc, bs[ic+ir:], mr, nr)
								accT = true
							}
							if inPlace {
								kr.strided(kc, aPanel, bPanel, ldb, c[ci:], ldc, accT)
							} else {
								kr.fn(kc, aPanel, bPanel, c[ci:], ldc, accT)
							}
							if last {
								reluRows(c[ci:], ldc, mr, nr)
							}
							continue
						}
						if inPlace { // a partial row tile: pack the panel for the scratch path
							packB(*bp, b.mat, pc, kc, jc+jr, nn, nr)
							bPanel, inPlace = *bp, false
						}
						if kr.half != nil && nn <= kr.halfNR {
							kr.half(kc, aPanel, bPanel, nr, edge[:], nr, false)
						} else {
							kr.fn(kc, aPanel, bPanel, edge[:], nr, false)
						}
						storeTile(c[ci:], ldc, edge[:], nr, mm, nn, acc, rowsFrom(bs, ic+ir))
						if last {
							reluRows(c[ci:], ldc, mm, nn)
						}
					}
				}
			}
		}
	}
}

// aInPlacePanels is the widest block, in panels, whose A is read in place.
const aInPlacePanels = 4

// noAInPlace packs A even where kernel.rowsA could read it in place, for
// the tests that compare the two.
var noAInPlace = false

// rowsFrom is bias from row i on, or nil without a bias.
func rowsFrom(bias []float32, i int) []float32 {
	if bias == nil {
		return nil
	}
	return bias[i:]
}

// packA writes rows [i0, i0+mc) x k [pc, pc+kc) of alpha*A as MR-row panels,
// each kc x MR, zero-padding the last panel.
func packA(dst []float32, a Matrix, alpha float32, i0, mc, pc, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		mm := min(mr, mc-ir)
		panel := dst[ir*kc : ir*kc+kc*mr]
		if !a.Trans && alpha == 1 && mm == mr && kc >= 8 {
			// 8 columns at a time transposed in registers, the rest below.
			groups := kc / 8
			if packPanel(panel, a.Data[(i0+ir)*a.Stride+pc:], mr, a.Stride, groups) {
				for p := 8 * groups; p < kc; p++ {
					for i := 0; i < mr; i++ {
						panel[p*mr+i] = a.Data[(i0+ir+i)*a.Stride+pc+p]
					}
				}
				continue
			}
		}
		if !a.Trans && alpha == 1 {
			// Row by row, the rows past a partial panel's end zero,
			// rather than an element at a time through at() below.
			for i := 0; i < mr; i++ {
				if i >= mm {
					for p := 0; p < kc; p++ {
						panel[p*mr+i] = 0
					}
					continue
				}
				row := a.Data[(i0+ir+i)*a.Stride+pc : (i0+ir+i)*a.Stride+pc+kc]
				for p, v := range row {
					panel[p*mr+i] = v
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			for i := 0; i < mr; i++ {
				if i < mm {
					panel[p*mr+i] = alpha * a.at(i0+ir+i, pc+p)
				} else {
					panel[p*mr+i] = 0
				}
			}
		}
	}
}

// packB packs B row by row when its rows are at least farRows floats apart
// (whole feature maps of 112x112: on 56x56 it measured 1.03-1.1x slower),
// with at least byRowPanels full panels and at most byRowK rows.
const (
	byRowPanels = 64
	byRowK      = 128
)

func byRow(b Matrix, kc, nc, nr int) bool {
	return !b.Trans && b.Stride >= farRows && nc/nr >= byRowPanels && kc <= byRowK
}

// packB writes k [pc, pc+kc) x columns [j0, j0+nc) of B as NR-column panels,
// each kc x NR, zero-padding the last panel.
func packB(dst []float32, b Matrix, pc, kc, j0, nc, nr int) {
	jr0 := 0
	if full := nc / nr; byRow(b, kc, nc, nr) {
		// Row by row: each of B's rows, a whole feature map, is read as one
		// sequential stream (1x1 convolutions on 112x112, input just
		// written: 0.6-0.9x the time of kc rows read at once). With a deep
		// k block the panels lie kc*nr floats apart, 16 KiB for 256: a
		// row's stores go to one L1 set (1.05-1.07x).
		byRow := true
		for p := 0; p < kc && byRow; p++ {
			byRow = packRow(dst[p*nr:], b.Data[(pc+p)*b.Stride+j0:], full, kc*nr, nr)
		}
		if byRow {
			jr0 = full * nr
		}
	}
	for jr := jr0; jr < nc; jr += nr {
		nn := min(nr, nc-jr)
		panel := dst[jr*kc : jr*kc+kc*nr]
		if !b.Trans && nn == nr {
			off := pc*b.Stride + j0 + jr
			if !packRows(panel, b.Data[off:], kc, b.Stride, nr) {
				for p := 0; p < kc; p++ {
					copy(panel[p*nr:p*nr+nr], b.Data[off+p*b.Stride:])
				}
			}
			continue
		}
		if b.Trans && nn == nr {
			for j := 0; j < nr; j++ {
				col := b.Data[(j0+jr+j)*b.Stride+pc : (j0+jr+j)*b.Stride+pc+kc]
				for p, v := range col {
					panel[p*nr+j] = v
				}
			}
			continue
		}
		// The ragged last panel: its nn columns and zeros. Row by row for a
		// plain B, a copy each, where a loop over every element through at
		// took most of a 256 -> 16 3x3 convolution on a 3x3 map (nine
		// columns, 2304 rows: 136 us of 200).
		if !b.Trans {
			off := pc*b.Stride + j0 + jr
			for p := 0; p < kc; p++ {
				row := panel[p*nr : p*nr+nr]
				copy(row[:nn], b.Data[off+p*b.Stride:])
				clear(row[nn:])
			}
			continue
		}
		clear(panel)
		for j := 0; j < nn; j++ {
			col := b.Data[(j0+jr+j)*b.Stride+pc : (j0+jr+j)*b.Stride+pc+kc]
			for p, v := range col {
				panel[p*nr+j] = v
			}
		}
	}
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = 0
			} else {
				row[j] *= beta
			}
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }
