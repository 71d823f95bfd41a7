//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// cpuVendor returns CPUID leaf 0's vendor string registers.
func cpuVendor() (ebx, edx, ecx uint32)

// amdCPU reports an AMD processor ("AuthenticAMD").
func amdCPU() bool {
	b, d, c := cpuVendor()
	return b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163
}

// regBroadcast picks the AVX-512 tile kernels that broadcast A's values to
// a register (the ...BR forms, gen_tiles.py's regbcast) over those that
// fuse the broadcast into the FMAs: on AMD's Zen 5 the fused form's load a
// FMA held the FMAs below two a cycle (1024^3 GEMM 150-163 -> 169-182
// GFLOP/s with the register form), on Sapphire Rapids the fused form ran in
// 0.88-0.96 of the time. Same FMAs in the same order: the same bits.
var regBroadcast = amdCPU()

// pick returns br when regBroadcast, else emb.
func pick[F any](emb, br F) F {
	if regBroadcast {
		return br
	}
	return emb
}

// The packed-panel AVX-512 kernels avx512Kernel calls, picked once.
var (
	kernel512        = pick(kernelAVX512, kernelAVX512BR)
	kernel512Strided = pick(kernelAVX512Strided, kernelAVX512StridedBR)
	kernel512Half    = pick(kernelAVX512Half, kernelAVX512HalfBR)
)

//go:noescape
func kernelAVX2(kc int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernelAVX512BR(kc int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernelAVX512StridedBR(kc int, a, b, c *float32, ldc, ldb int, acc bool)

//go:noescape
func kernelAVX512HalfBR(kc int, a, b, c *float32, ldc, ldb int, acc bool)

//go:noescape
func kernelAVX2Strided(kc int, a, b, c *float32, ldc, ldb int, acc bool)

//go:noescape
func kernelAVX2Half(kc int, a, b, c *float32, ldc, ldb int, acc bool)

//go:noescape
func kernelAVX2Rows8(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool)

// rows8AVX2 is the narrow-product kernel for both SIMD kernels (AVX-512
// machines run AVX2 too).
func rows8AVX2(kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = a[7*lda+kc-1]
	_ = b[(kc-1)*ldb+7]
	_ = c[7*ldc+7]
	kernelAVX2Rows8(kc, &a[0], lda, &b[0], ldb, &c[0], ldc, acc)
}

//go:noescape
func kernelAVX512Half(kc int, a, b, c *float32, ldc, ldb int, acc bool)

//go:noescape
func kernelAVX512Strided(kc int, a, b, c *float32, ldc, ldb int, acc bool)

var avx2Kernel = kernel{name: "avx2-6x16", mr: 6, nr: 16, fn: func(kc int, a, b, c []float32, ldc int, acc bool) {
	// Bounds the assembly relies on: full panels and a full tile of C.
	_ = a[kc*6-1]
	_ = b[kc*16-1]
	_ = c[5*ldc+15]
	kernelAVX2(kc, &a[0], &b[0], &c[0], ldc, acc)
}, strided: func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = a[kc*6-1]
	_ = b[(kc-1)*ldb+15]
	_ = c[5*ldc+15]
	kernelAVX2Strided(kc, &a[0], &b[0], &c[0], ldc, ldb, acc)
}, halfNR: 8, half: func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = a[kc*6-1]
	_ = b[(kc-1)*ldb+7]
	_ = c[5*ldc+7]
	kernelAVX2Half(kc, &a[0], &b[0], &c[0], ldc, ldb, acc)
}, rows8: rows8AVX2, small: smallAVX2Rows, smallNR: 16, rows: tileColumn(6, 16, kernelAVX2Tiles), grid: []gridKernel{
	{mr: 6, nr: 16, fn: func(kc int, a, b []float32, offs, ds []int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
		_ = a[kc*6*((rows+5)/6)-1]
		_ = offs[kc-1]
		_ = c[(rows-1)*ldc+15]
		kernelAVX2OffsTiles(kc, &a[0], &b[0], &offs[0], &c[0], ldc, ds[1], acc, rows, biasPtr(bias, rows))
	}},
	grid4x24,
}, gemv: gemvPanels(16, gemvPanels16AVX2), gemvRows: gemvRowsOf(16, gemvRows16AVX2), gemvRows8: gemvRowsOf(8, gemvRows8AVX2)}

// grid4x24 is the 4 x 24 offsets kernel; every AVX2 machine runs it.
var grid4x24 = gridKernel{mr: 4, nr: 24, fn: offs4(24, kernelAVX2Offs4x24),
	narrow: [4]gridFn{1: offs4(8, kernelAVX2Offs4x8), 2: offs4(16, kernelAVX2Offs4x16)}}

// offs4 wraps one of the 4-row offsets kernels, cols (8, 16 or 24) wide:
// it reads its groups at offs[p], offs[p]+d1 and offs[p]+d2, as many as
// it has.
func offs4(cols int, k func(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc accMode, rows int, bias *float32)) gridFn {
	return func(kc int, a, b []float32, offs, ds []int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
		_ = a[kc*4*((rows+3)/4)-1]
		_ = offs[kc-1]
		_ = c[(rows-1)*ldc+cols-1]
		d1, d2 := 0, 0
		if cols > 8 {
			d1 = ds[1]
		}
		if cols > 16 {
			d2 = ds[2]
		}
		k(kc, &a[0], &b[0], &offs[0], &c[0], ldc, d1, d2, acc, rows, biasPtr(bias, rows))
	}
}

// biasPtr is the first of a bias's rows values for the row-tile kernels,
// nil without a bias.
func biasPtr(bias []float32, rows int) *float32 {
	if bias == nil {
		return nil
	}
	_ = bias[rows-1]
	return &bias[0]
}

//go:noescape
func kernelAVX2Tiles(kc int, a, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX2OffsTiles(kc int, a, b *float32, offs *int, c *float32, ldc, d1 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX2Offs4x24(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX2Offs4x8(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX2Offs4x16(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc accMode, rows int, bias *float32)

var avx512Kernel = kernel{name: "avx512-12x32", mr: 12, nr: 32, fn: func(kc int, a, b, c []float32, ldc int, acc bool) {
	_ = a[kc*12-1]
	_ = b[kc*32-1]
	_ = c[11*ldc+31]
	kernel512(kc, &a[0], &b[0], &c[0], ldc, acc)
}, strided: func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = a[kc*12-1]
	_ = b[(kc-1)*ldb+31]
	_ = c[11*ldc+31]
	kernel512Strided(kc, &a[0], &b[0], &c[0], ldc, ldb, acc)
}, halfNR: 16, half: func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = a[kc*12-1]
	_ = b[(kc-1)*ldb+15]
	_ = c[11*ldc+15]
	kernel512Half(kc, &a[0], &b[0], &c[0], ldc, ldb, acc)
}, rows8: rows8AVX2, small: smallAVX512Rows, small6: small6AVX512Rows, smallNR: 32, rows: tileColumn(12, 32, pick(kernelAVX512Tiles, kernelAVX512TilesBR)),
	rowsA: tileColumnA(12, 32, pick(kernelAVX512TilesA, kernelAVX512TilesABR)), grid: []gridKernel{grid12x32, grid8x32, grid4x24},
	gemv: gemvPanels(32, gemvPanels32AVX512), gemvRows: gemvRowsOf(32, gemvRows32AVX512), gemvRows8: gemvRowsOf(8, gemvRows8AVX2)}

//go:noescape
func gemvPanels32AVX512(kc int, x, b *float32, panels int, y *float32, acc bool)

//go:noescape
func gemvPanels16AVX2(kc int, x, b *float32, panels int, y *float32, acc bool)

//go:noescape
func gemvRows32AVX512(kc int, x, b *float32, ldb, panels int, y *float32, acc bool)

//go:noescape
func gemvRows16AVX2(kc int, x, b *float32, ldb, panels int, y *float32, acc bool)

//go:noescape
func gemvRows8AVX2(kc int, x, b *float32, ldb, panels int, y *float32, acc bool)

// gemvRowsOf wraps an nr-wide kernel.gemvRows routine with its bounds
// checks.
func gemvRowsOf(nr int, k func(kc int, x, b *float32, ldb, panels int, y *float32, acc bool)) func(kc int, x, b []float32, ldb, panels int, y []float32, acc bool) {
	return func(kc int, x, b []float32, ldb, panels int, y []float32, acc bool) {
		if kc == 0 || panels == 0 {
			return
		}
		_ = x[kc-1]
		_ = b[(kc-1)*ldb+panels*nr-1]
		_ = y[panels*nr-1]
		k(kc, &x[0], &b[0], ldb, panels, &y[0], acc)
	}
}

// gemvPanels wraps an nr-wide kernel.gemv routine with its bounds checks.
func gemvPanels(nr int, k func(kc int, x, b *float32, panels int, y *float32, acc bool)) func(kc int, x, b []float32, panels int, y []float32, acc bool) {
	return func(kc int, x, b []float32, panels int, y []float32, acc bool) {
		if kc == 0 || panels == 0 {
			return
		}
		_ = x[kc-1]
		_ = b[panels*kc*nr-1]
		_ = y[panels*nr-1]
		k(kc, &x[0], &b[0], panels, &y[0], acc)
	}
}

// tileColumn wraps an mr x nr tile-column kernel (kernel.rows) with its
// bounds checks.
func tileColumn(mr, nr int, k func(kc int, a, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)) func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
	return func(kc int, a, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
		_ = a[kc*mr*((rows+mr-1)/mr)-1]
		_ = b[(kc-1)*ldb+nr-1]
		_ = c[(rows-1)*ldc+nr-1]
		k(kc, &a[0], &b[0], ldb, &c[0], ldc, acc, rows, biasPtr(bias, rows))
	}
}

// tileColumnA wraps an mr x nr tile-column kernel that reads A in place
// (kernel.rowsA) with its bounds checks.
func tileColumnA(mr, nr int, k func(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)) func(kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
	return func(kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
		if rows%mr != 0 || kc == 0 {
			panic("gemm: rowsA takes whole tiles and kc > 0")
		}
		_ = a[(rows-1)*lda+kc-1]
		_ = b[(kc-1)*ldb+nr-1]
		_ = c[(rows-1)*ldc+nr-1]
		k(kc, &a[0], lda, &b[0], ldb, &c[0], ldc, acc, rows, biasPtr(bias, rows))
	}
}

//go:noescape
func kernelAVX512TilesA(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512TilesABR(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)

// grid12x32 reads a convolution's input in place for the 12 x 32 kernel:
// without it every panel of a grid convolution was gathered first, and the
// AVX-512 machine ran YOLO-style 3x3 convolutions at half the AVX2 speed.
var grid12x32 = gridKernel{mr: 12, nr: 32, cheap: true, fn: offs32(12, pick(kernelAVX512OffsTiles, kernelAVX512OffsTilesBR)),
	contig: offs32(12, pick(kernelAVX512OffsTilesC, kernelAVX512OffsTilesCBR))}

// grid8x32 is the 8-row AVX-512 offsets kernel, for A packed by
// PackANarrow on AVX-512 machines: 16 or 32 output channels in whole tiles,
// at the 16-float width the 4x24 AVX2 tiles lack.
var grid8x32 = gridKernel{mr: 8, nr: 32, fn: offs32(8, pick(kernelAVX512Offs8Tiles, kernelAVX512Offs8TilesBR)),
	contig: offs32(8, pick(kernelAVX512Offs8TilesC, kernelAVX512Offs8TilesCBR))}

// offs32 wraps one of the mr-row AVX-512 offsets kernels (four 8-float
// groups a row, at ds[0..3]) with its bounds checks.
func offs32(mr int, k func(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)) gridFn {
	return func(kc int, a, b []float32, offs, ds []int, c []float32, ldc int, acc accMode, rows int, bias []float32) {
		_ = a[kc*mr*((rows+mr-1)/mr)-1]
		_ = offs[kc-1]
		_ = c[(rows-1)*ldc+31]
		k(kc, &a[0], &b[0], &offs[0], &c[0], ldc, ds[1], ds[2], ds[3], acc, rows, biasPtr(bias, rows))
	}
}

//go:noescape
func kernelAVX512Offs8Tiles(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512Tiles(kc int, a, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512OffsTilesC(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512Offs8TilesC(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512TilesBR(kc int, a, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512OffsTilesBR(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512Offs8TilesBR(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512OffsTilesCBR(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512Offs8TilesCBR(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func kernelAVX512OffsTiles(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)

//go:noescape
func packRows16AVX(dst, src *float32, kc, stride int)

//go:noescape
func packRows32AVX(dst, src *float32, kc, stride int)

// packRows copies kc rows of nr floats, stride apart, into dst (kc x nr); it
// reports false when no vector routine fits nr.
func packRows(dst, src []float32, kc, stride, nr int) bool {
	if kc == 0 || !cpu.X86.HasAVX {
		return kc == 0
	}
	_ = src[(kc-1)*stride+nr-1]
	_ = dst[kc*nr-1]
	switch nr {
	case 16:
		packRows16AVX(&dst[0], &src[0], kc, stride)
	case 32:
		packRows32AVX(&dst[0], &src[0], kc, stride)
	default:
		return false
	}
	return true
}

//go:noescape
func packRow16AVX(dst, src *float32, panels, pstride int)

//go:noescape
func packRow32AVX(dst, src *float32, panels, pstride int)

// packRow copies panels x nr floats of one row of B from src into panels
// packed panels, pstride apart in dst; it reports false when no vector
// routine fits nr.
func packRow(dst, src []float32, panels, pstride, nr int) bool {
	if panels == 0 || !cpu.X86.HasAVX {
		return panels == 0
	}
	_ = src[panels*nr-1]
	_ = dst[(panels-1)*pstride+nr-1]
	switch nr {
	case 16:
		packRow16AVX(&dst[0], &src[0], panels, pstride)
	case 32:
		packRow32AVX(&dst[0], &src[0], panels, pstride)
	default:
		return false
	}
	return true
}

// kernels lists the micro-kernels this machine can run, best first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, portableKernel)
}

//go:noescape
func smallAVX512(k int, a *[6]*float32, b *float32, ldb int, c *float32, ldc, rows int, m0, m1 uint16, acc bool)

// smallAVX512Rows is kernel.small for AVX-512: the columns past cols are
// masked.
func smallAVX512Rows(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int, acc bool) {
	p := smallRowPointers(k, a, lda, rows, b, ldb, cols, c, ldc)
	mask := uint32(1)<<cols - 1
	smallAVX512(k, &p, &b[0], ldb, &c[0], ldc, rows, uint16(mask), uint16(mask>>16), acc)
}

//go:noescape
func smallAVX2(k int, a *[6]*float32, b *float32, ldb int, c *float32, ldc, rows, cols int, acc bool)

// smallAVX2Rows is kernel.small for AVX2 (16 columns a call), as
// smallAVX512Rows.
func smallAVX2Rows(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int, acc bool) {
	p := smallRowPointers(k, a, lda, rows, b, ldb, cols, c, ldc)
	smallAVX2(k, &p, &b[0], ldb, &c[0], ldc, rows, cols, acc)
}

// smallRowPointers checks the bounds the small kernels rely on and returns
// A's row pointers (the four-row kernels read the first four), the last row
// repeated for fewer rows (read, never stored).
func smallRowPointers(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int) (p [6]*float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = b[(k-1)*ldb+cols-1]
	_ = c[(rows-1)*ldc+cols-1]
	for r := range p {
		p[r] = &a[min(r, rows-1)*lda]
	}
	return p
}

//go:noescape
func small6AVX512(k int, a *[6]*float32, b *float32, ldb int, c *float32, ldc, rows int, m0, m1 uint16, acc bool)

// small6AVX512Rows is smallAVX512Rows on up to six rows.
func small6AVX512Rows(k int, a []float32, lda, rows int, b []float32, ldb, cols int, c []float32, ldc int, acc bool) {
	p := smallRowPointers(k, a, lda, rows, b, ldb, cols, c, ldc)
	mask := uint32(1)<<cols - 1
	small6AVX512(k, &p, &b[0], ldb, &c[0], ldc, rows, uint16(mask), uint16(mask>>16), acc)
}
