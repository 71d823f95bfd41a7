package gemm

import "github.com/onnxq/onnxq/kernels/parallel"

// narrow computes C = A * B + beta * C for B at most 8 columns wide (attention
// probabilities times V with a small head size) and reports whether it did.
// The tiled path would pack all of A to use each element in at most 8 FMAs,
// and fill only part of every NR-wide tile; here each 8-row block of A is read
// in place by the rows8 kernel while B (k x 8) stays in L1.
func narrow(m, n, k int, alpha float32, a, b Matrix, beta float32, c []float32, ldc int, threads int) bool {
	kr := &active // a pointer: see run
	if kr.rows8 == nil || n > 8 || m < 8 || alpha != 1 || a.Trans || b.Trans {
		return false
	}
	if beta != 0 && beta != 1 {
		scaleC(m, n, beta, c, ldc)
	}
	acc := beta != 0
	bd, ldb := b.Data, b.Stride
	if n < 8 { // the kernel reads 8 columns: widen B with zeros
		bp := getBuf(k * 8)
		defer bufPool.Put(bp)
		bd, ldb = *bp, 8
		for p := 0; p < k; p++ {
			row := bd[p*8 : p*8+8]
			clear(row[copy(row[:n], b.Data[p*b.Stride:p*b.Stride+n]):])
		}
	}
	blocks := m / 8
	threads = parallel.Split(max(1, threads), 2*m*n*k, minFlopsPerThread)
	if threads == 1 {
		narrowRows(kr, n, k, a, bd, ldb, c, ldc, acc, 0, blocks)
	} else {
		items := min(blocks, itemsPerThread*threads)
		parallel.For(threads, items, func(it int) {
			narrowRows(kr, n, k, a, bd, ldb, c, ldc, acc, it*blocks/items, (it+1)*blocks/items)
		})
	}
	// The last m % 8 rows, one at a time.
	for i := blocks * 8; i < m; i++ {
		var t [8]float32
		arow := a.Data[i*a.Stride : i*a.Stride+k]
		for p, av := range arow {
			brow := bd[p*ldb : p*ldb+n]
			for j, bv := range brow {
				t[j] += av * bv
			}
		}
		dst := c[i*ldc : i*ldc+n]
		for j := range dst {
			if acc {
				dst[j] += t[j]
			} else {
				dst[j] = t[j]
			}
		}
	}
	return true
}

// narrowRows computes the 8-row blocks [b0, b1) of narrow's product (a
// function, not a closure: one that parallel.For may take escapes, and was
// an allocation on every call, single-threaded too).
func narrowRows(kr *kernel, n, k int, a Matrix, bd []float32, ldb int, c []float32, ldc int, acc bool, b0, b1 int) {
	edge := edgePool.Get().(*[12 * 32]float32)
	defer edgePool.Put(edge)
	for blk := b0; blk < b1; blk++ {
		i := blk * 8
		if n == 8 {
			kr.rows8(k, a.Data[i*a.Stride:], a.Stride, bd, ldb, c[i*ldc:], ldc, acc)
			continue
		}
		kr.rows8(k, a.Data[i*a.Stride:], a.Stride, bd, ldb, edge[:], 8, false)
		storeTile(c[i*ldc:], ldc, edge[:], 8, 8, n, acc, nil)
	}
}
