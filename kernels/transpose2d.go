package kernels

import "github.com/onnxq/onnxq/kernels/vec"

// matrixTranspose reports whether a permutation of shape moves whole matrices:
// with axes of size 1 dropped and neighbouring axes that stay neighbours
// merged, the input is batch x rows x cols and the output batch x cols x rows
// (YOLO's head, [1, 85, 3549] to [1, 3549, 85]). Such a transpose goes
// through transposeBlocked instead of one strided copy per output row.
func matrixTranspose(shape, perm []int) (batch, rows, cols int, ok bool) {
	// Runs of output axes whose input axes are consecutive, as
	// (first input axis, size), in output order.
	type run struct{ first, last, size int }
	var runs []run
	for _, p := range perm {
		if shape[p] == 1 {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].last < p && onlyOnes(shape, runs[n-1].last+1, p) {
			runs[n-1].last = p
			runs[n-1].size *= shape[p]
			continue
		}
		runs = append(runs, run{p, p, shape[p]})
	}
	switch {
	case len(runs) == 2 && runs[1].last < runs[0].first:
		return 1, runs[1].size, runs[0].size, true
	case len(runs) == 3 && runs[0].last < runs[2].first && runs[2].last < runs[1].first:
		return runs[0].size, runs[2].size, runs[1].size, true
	}
	return 0, 0, 0, false
}

// onlyOnes reports whether shape[lo:hi] holds only 1s.
func onlyOnes(shape []int, lo, hi int) bool {
	for _, d := range shape[lo:hi] {
		if d != 1 {
			return false
		}
	}
	return true
}

// transposeTile is how many destination rows transposeBlocked writes
// together: each source row gives them 8 neighbouring values (32 bytes of one
// cache line) per visit, where one strided pass per destination row takes
// one value per visit. vec.TransposeCols8 moves 8 x 8 blocks in registers:
// YOLO's head, 85 x 3549, 0.21 ms with scalar copies of 8 -> 0.05 ms on one
// core, cache warm.
const transposeTile = 8

// transposeBlocked writes the rows x cols matrix src transposed into dst
// (dst[j*rows+i] = src[i*cols+j]), for destination rows [j0, j1).
func transposeBlocked(dst, src []float32, rows, cols, j0, j1 int) {
	j := j0
	for ; j+transposeTile <= j1; j += transposeTile {
		vec.TransposeCols8(dst, src, rows, cols, j)
	}
	for ; j < j1; j++ {
		d := dst[j*rows : (j+1)*rows]
		for i := range d {
			d[i] = src[i*cols+j]
		}
	}
}
