package kernels

import "github.com/onnxq/onnxq/kernels/vec"

// matrixTranspose reports whether a permutation of shape moves whole matrices:
// with axes of size 1 dropped and neighbouring axes that stay neighbours
// merged, the input is batch x rows x cols and the output batch x cols x rows
// (YOLO's head, [1, 85, 3549] to [1, 3549, 85]). Such a transpose goes
// through transposeBlocked instead of one strided copy per output row.
func matrixTranspose(shape, perm []int) (batch, rows, cols int, ok bool) {
	var buf [8]axisRun
	return swappedRuns(axisRuns(buf[:0], shape, perm))
}

// blockTranspose reports whether a permutation of shape is a matrix
// transpose whose elements are blocks of blk > 1 consecutive values that
// stay together: the last axes keep their place (attention's [1, S, H, D]
// to [1, H, S, D], blocks of D). The blocks then move whole, where the
// strided copy took one call per block.
func blockTranspose(shape, perm []int) (batch, rows, cols, blk int, ok bool) {
	var buf [8]axisRun
	runs := axisRuns(buf[:0], shape, perm)
	n := len(runs)
	if n < 3 {
		return 0, 0, 0, 0, false
	}
	last := runs[n-1]
	for _, r := range runs[:n-1] {
		if r.last > last.first {
			return 0, 0, 0, 0, false
		}
	}
	batch, rows, cols, ok = swappedRuns(runs[:n-1])
	return batch, rows, cols, last.size, ok
}

// axisRun is a run of output axes whose input axes are consecutive (axes of
// size 1 left out): the first and last input axis, and their size.
type axisRun struct{ first, last, size int }

// axisRuns lists a permutation's runs in output order, appended to runs
// (a caller's array on its stack).
func axisRuns(runs []axisRun, shape, perm []int) []axisRun {
	for _, p := range perm {
		if shape[p] == 1 {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].last < p && onlyOnes(shape, runs[n-1].last+1, p) {
			runs[n-1].last = p
			runs[n-1].size *= shape[p]
			continue
		}
		runs = append(runs, axisRun{p, p, shape[p]})
	}
	return runs
}

// swappedRuns reports whether runs are [batch,] cols, rows: two runs whose
// input order is swapped, after a batch run that stays first.
func swappedRuns(runs []axisRun) (batch, rows, cols int, ok bool) {
	switch {
	case len(runs) == 2 && runs[1].last < runs[0].first:
		return 1, runs[1].size, runs[0].size, true
	case len(runs) == 3 && runs[0].last < runs[2].first && runs[2].last < runs[1].first:
		return runs[0].size, runs[2].size, runs[1].size, true
	}
	return 0, 0, 0, false
}

// transposeBlocks writes the rows x cols matrix of blk-value blocks src
// transposed into dst, for source rows [i0, i1).
func transposeBlocks(dst, src []float32, rows, cols, blk, i0, i1 int) {
	for i := i0; i < i1; i++ {
		for j := 0; j < cols; j++ {
			s, d := (i*cols+j)*blk, (j*rows+i)*blk
			if blk == 8 {
				*(*[8]float32)(dst[d : d+8]) = [8]float32(src[s : s+8])
				continue
			}
			copy(dst[d:d+blk], src[s:s+blk])
		}
	}
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
