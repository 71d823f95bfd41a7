// Package igemm multiplies 8-bit integer matrices, unsigned A by signed B,
// into int32, with the AVX-512 VNNI instruction VPDPBUSD (four u8 x s8
// products summed into each int32 lane, one instruction): the arithmetic
// ONNX Runtime's integer kernels use for MatMulInteger and its kin. The
// products are exact; there is no rounding anywhere. Where the CPU lacks
// VNNI, Available is false and callers keep their own path (onnxq's
// float32 GEMM form, also exact); the portable tile here is the reference
// the tests hold the assembly to.
package igemm

import "github.com/onnxq/onnxq/kernels/parallel"

// nr is a panel's width in columns (two 16-lane int32 registers), mr the
// rows a tile takes at once.
const (
	nr = 32
	mr = 6
)

// RowBlock is how many rows of A the tiles take at once: a product over a
// multiple of it has no ragged last block.
const RowBlock = mr

// PackedB is a k x n int8 matrix packed for the tiles: panels of nr
// columns (the last padded with zeros), each holding K in groups of four,
// a group's four values of one column adjacent ([k4][nr][4] bytes), as
// VPDPBUSD reads them; K is padded with zeros to a multiple of 4.
type PackedB struct {
	K, N    int
	k4      int
	data    []int8
	ColSums []int32 // the sum of each column of B (for zero-point corrections)
}

// PackB packs the k x n matrix held row-major in b (row stride stride).
func PackB(k, n int, b []int8, stride int) *PackedB {
	k4 := (k + 3) / 4
	panels := (n + nr - 1) / nr
	p := &PackedB{K: k, N: n, k4: k4, data: make([]int8, panels*k4*nr*4), ColSums: make([]int32, n)}
	for pi := range panels {
		dst := p.data[pi*k4*nr*4:]
		for j := 0; j < nr && pi*nr+j < n; j++ {
			col := pi*nr + j
			var sum int32
			for r := range k {
				v := b[r*stride+col]
				dst[(r/4)*nr*4+j*4+r%4] = v
				sum += int32(v)
			}
			p.ColSums[col] = sum
		}
	}
	return p
}

// Mul sets c[i*ldc+j] to the sum over p of a[i*lda+p] * B[p][j], plus
// bias[j] when bias is not nil (n values), for the m rows of a (k = p.K
// values each), using up to threads threads.
func Mul(m int, a []uint8, lda int, p *PackedB, c []int32, ldc int, bias []int32, threads int) {
	if m == 0 || p.N == 0 {
		return
	}
	if m < mr/2 {
		mulRows(m, a, lda, p, c, ldc, bias, threads)
		return
	}
	k4 := p.k4
	blocks := (m + mr - 1) / mr
	panels := (p.N + nr - 1) / nr
	// The tiles read each row of A in whole groups of four, mr rows at a
	// time. Past K a group's bytes are the next row's (or padding), times
	// B's zero padding: they add nothing, but must be there to read. So a
	// last block of fewer than mr rows, and a last block whose last row's
	// groups run past the end of a, read a copy of their rows, padded.
	// Rows under 4 bytes apart (K 1 to 3) can run past it from the rows
	// before the last too: then all of A is copied, padded (m x 4 bytes).
	if p.K%4 != 0 && lda < 4 {
		buf := make([]uint8, m*k4*4)
		for r := range m {
			copy(buf[r*k4*4:], a[r*lda:r*lda+p.K])
		}
		a, lda = buf, k4*4
	}
	tailStart := m / mr * mr
	if tailStart == m && (m-1)*lda+k4*4 > len(a) {
		tailStart = m - mr
	}
	var tail []uint8
	if tailStart < m {
		tail = make([]uint8, mr*k4*4)
		for r := range m - tailStart {
			at := (tailStart + r) * lda
			copy(tail[r*k4*4:], a[at:at+p.K])
		}
	}
	parallel.For(min(threads, blocks*panels), blocks*panels, func(it int) {
		// A panel of B (32 columns, k bytes each: 24 KiB at k 768) stays
		// in L1 while every block of rows passes it.
		pi, bi := it/blocks, it%blocks
		r0 := bi * mr
		rows := min(mr, m-r0)
		cols := min(nr, p.N-pi*nr)
		var pb [nr]int32
		if bias != nil {
			copy(pb[:], bias[pi*nr:pi*nr+cols])
		}
		ap, ld := a[r0*lda:], lda
		if r0 >= tailStart {
			ap, ld = tail, k4*4
		}
		b := p.data[pi*k4*nr*4 : (pi+1)*k4*nr*4]
		// A whole tile is stored in c; the edges through a tile of their own.
		if rows == mr && cols == nr {
			tileFn(ap, ld, b, k4, c[r0*ldc+pi*nr:], ldc, &pb)
			return
		}
		var tile [mr * nr]int32
		tileFn(ap, ld, b, k4, tile[:], nr, &pb)
		for r := range rows {
			copy(c[(r0+r)*ldc+pi*nr:(r0+r)*ldc+pi*nr+cols], tile[r*nr:r*nr+cols])
		}
	})
}

// rowGo is the portable row kernel: out[p*nr+j] is the sum over the k4
// groups of row a's four bytes times column j of panel p, for panels
// panels of b.
func rowGo(a []uint8, b []int8, k4, panels int, out []int32) {
	for p := range panels {
		pb := b[p*k4*nr*4:]
		for j := range nr {
			var s int32
			for g := range k4 {
				for q := range 4 {
					s += int32(a[g*4+q]) * int32(pb[g*nr*4+j*4+q])
				}
			}
			out[p*nr+j] = s
		}
	}
}

// mulRows is Mul for a few rows (fewer than a tile's): each row against
// the panels four at a time (rowFn), the threads taking groups of panels.
func mulRows(m int, a []uint8, lda int, p *PackedB, c []int32, ldc int, bias []int32, threads int) {
	k4 := p.k4
	panels := (p.N + nr - 1) / nr
	groups := (panels + 3) / 4
	// Each row padded to whole groups of four (B's padding is zero).
	row := make([]uint8, m*k4*4)
	for r := range m {
		copy(row[r*k4*4:], a[r*lda:r*lda+p.K])
	}
	parallel.For(min(threads, m*groups), m*groups, func(it int) {
		r, g := it/groups, it%groups
		p0 := g * 4
		n := min(4, panels-p0)
		var sums [4 * nr]int32
		for done := 0; done < n; {
			step := 1
			if n-done == 4 {
				step = 4
			}
			rowFn(row[r*k4*4:(r+1)*k4*4], p.data[(p0+done)*k4*nr*4:], k4, step, sums[done*nr:])
			done += step
		}
		c0 := p0 * nr
		cols := min(n*nr, p.N-c0)
		dst := c[r*ldc+c0 : r*ldc+c0+cols]
		copy(dst, sums[:cols])
		if bias != nil {
			for j := range dst {
				dst[j] += bias[c0+j]
			}
		}
	})
}

// tileGo is the portable tile: row r of out (rows ldo apart) gets, for
// each column j of the panel b, bias[j] plus the sum over the k4 groups of
// the four products of row r of a (rows ld apart) and column j.
func tileGo(a []uint8, ld int, b []int8, k4 int, out []int32, ldo int, bias *[nr]int32) {
	for r := range mr {
		row := a[r*ld : r*ld+k4*4]
		o := out[r*ldo : r*ldo+nr]
		copy(o, bias[:])
		for g := range k4 {
			grp := b[g*nr*4 : (g+1)*nr*4]
			for j := range nr {
				s := o[j]
				for q := range 4 {
					s += int32(row[g*4+q]) * int32(grp[j*4+q])
				}
				o[j] = s
			}
		}
	}
}
