package gemm

// Small products. A call of the packed path costs about 0.4-0.5 us before
// any arithmetic (packing buffers taken and returned, A packed, partial
// tiles through scratch), where a 16 x 16 x 16 product is 4096 FMAs, about
// 60 ns of an AVX-512 core: a window attention's heads (Swin: 48 of them a
// layer, q k^T and p v each), a recommender's 8-row MLPs and tiny batched
// products paid that again and again. kernel.small reads A and B in place,
// four rows of C (six on AVX-512) by smallNR columns a call (32 on AVX-512,
// 16 on AVX2), with no packing and no scratch.

// smallMaxN, smallMaxK and smallMaxFMAs bound the products small takes: up
// to 64 columns (two calls across), k within one k block (so the sums are
// the tiled path's own, a chain of FMAs from zero in ascending k, then C
// added), and few enough FMAs that packing could not pay for itself.
const (
	smallMaxN    = 64
	smallMaxK    = kcBlock
	smallMaxFMAs = 1 << 17
)

// smallFits reports whether small computes this product. On one thread,
// products one 32-column panel wide take it up to twice the FMAs (the
// six-row kernel against the tiled path, paired: 65x32x65 0.79x the time,
// 49x32x49 0.70x, 128x32x64 0.94x; 64 columns and more lose, 65x65x32
// 1.04x, 96x64x48 1.12x); on more threads the tiled path splits those.
func smallFits(kr *kernel, m, n, k int, alpha float32, a, b Matrix, beta float32, threads int) bool {
	limit := smallMaxFMAs
	if n <= 32 && kr.small6 != nil && threads <= 1 {
		limit *= 2
	}
	return kr.small != nil && alpha == 1 && (beta == 0 || beta == 1) && !a.Trans && !b.Trans &&
		n <= smallMaxN && k <= smallMaxK && m*n*k <= limit
}

// small computes C = A * B (+ C when acc) for a product smallFits takes.
func small(kr *kernel, m, n, k int, a, b Matrix, acc bool, c []float32, ldc int) {
	smallPanels(kr, m, n, k, a, b.Data, b.Stride, 1, kr.smallNR, acc, c, ldc)
}

// smallPanels runs kr.small (or small6) over C up to six rows by nr columns
// at a time; the
// columns from j on of B start at b[j*colStep:], rows ldb apart (B in
// place: colStep 1; packed: a panel of k rows nr apart every nr columns).
func smallPanels(kr *kernel, m, n, k int, a Matrix, b []float32, ldb, colStep, nr int, acc bool, c []float32, ldc int) {
	for i := 0; i < m; {
		// Six rows a call where the kernel has them (twelve chains of
		// FMAs hide their latency better than eight: 49x49x32 0.82x the
		// time), but eight rows as two fours (six and two took 1.08x) and
		// four or fewer in one four-row call.
		f, rows := kr.small, min(4, m-i)
		if rest := m - i; kr.small6 != nil && rest > 4 && rest != 8 {
			f, rows = kr.small6, min(6, rest)
		}
		for j := 0; j < n; j += nr {
			f(k, a.Data[i*a.Stride:], a.Stride, rows, b[j*colStep:], ldb, min(nr, n-j), c[i*ldc+j:], ldc, acc)
		}
		i += rows
	}
}

// smallPackedFits reports whether smallPacked computes this product: B
// packed in one k block of smallNR-column panels, few FMAs (a
// recommender's or a batch of 8's MLP layers, whose few rows the tiled path
// packed into a 12-row panel with a scalar loop on every call).
func smallPackedFits(kr *kernel, m int, alpha float32, a Matrix, p *PackedB, beta float32) bool {
	return kr.small != nil && p.nr == kr.smallNR && alpha == 1 && (beta == 0 || beta == 1) && !a.Trans &&
		p.K <= kcBlock && m*p.N*p.K <= smallMaxFMAs
}

// smallPacked is small with B packed: a panel is a k x nr matrix, rows nr
// apart, its columns past N zero.
func smallPacked(kr *kernel, m int, a Matrix, p *PackedB, acc bool, c []float32, ldc int) {
	smallPanels(kr, m, p.N, p.K, a, p.data, p.nr, p.K, p.nr, acc, c, ldc)
}
