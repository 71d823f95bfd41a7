package vec

// Max3Stride2Rows is a 3x3 stride-2 max pool of rows whole output rows of n:
// dst[i*dstRow+j] is the max of the nine values src holds in rows 2i, 2i+1,
// 2i+2 (rows w apart) at columns 2j, 2j+1, 2j+2; each of those rows must
// hold 2n+1 values. The max is Max's (a NaN wins, the last one when there
// are several; between equal values the first is kept), taken down each
// column and then across the three columns in order, so the bits are those
// of Max applied that way.
func Max3Stride2Rows(dst []float32, dstRow int, src []float32, w, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = dst[(rows-1)*dstRow+n-1]
	_ = src[2*(rows-1)*w+2*w+2*n] // the last row reaches the last window
	if simdLen(n) > 0 {
		max3s2RowsAsm(&dst[0], &src[0], n, rows, w, dstRow)
		return
	}
	for i := 0; i < rows; i++ {
		r := src[2*i*w:]
		Max3Stride2(dst[i*dstRow:i*dstRow+n], r, r[w:], r[2*w:])
	}
}

// Max3Stride2 is Max3Stride2Rows for one output row from rows r0, r1, r2
// given apart, each at least 2*len(dst)+1 long; fewer rows come in as
// repeats ((r0, r0, r1) is the max of r0 and r1). It is a plain loop: pooling
// takes it only for rows at the padded edges.
func Max3Stride2(dst, r0, r1, r2 []float32) {
	for j := range dst {
		x := 2 * j
		dst[j] = maxOf2(maxOf2(col3(r0, r1, r2, x), col3(r0, r1, r2, x+1)), col3(r0, r1, r2, x+2))
	}
}

// maxOf2 is Max for one pair: b when it is NaN or larger, else a.
func maxOf2(a, b float32) float32 {
	if b != b || b > a {
		return b
	}
	return a
}

func col3(r0, r1, r2 []float32, x int) float32 {
	return maxOf2(maxOf2(r0[x], r1[x]), r2[x])
}

// Max3Stride2Edges is Max3Stride2Rows for windows that may reach past the
// input (a padded or ceil-mode pool): rows output rows of n, row i's
// three input rows at src[i*srcRow:], src[i*srcRow+dr1:] and
// src[i*srcRow+dr2:], each w floats, output j from columns x0+2j ..
// x0+2j+2 of them; columns outside [0, w) are left out of the max (a row
// missing at the top or bottom comes in as a repeat, as for Max3Stride2).
// The max is taken in Max3Stride2Rows' order, so the bits are its. It
// returns false, computing nothing, where the machine has no kernel for it
// (see HasMax3Stride2Edges).
func Max3Stride2Edges(dst []float32, dstRow int, src []float32, w, rows, n, x0, dr1, dr2, srcRow int) bool {
	if rows <= 0 || n <= 0 {
		return HasMax3Stride2Edges()
	}
	_ = dst[(rows-1)*dstRow+n-1]
	_ = src[(rows-1)*srcRow+max(dr1, dr2)+w-1]
	if dr1 < 0 || dr2 < 0 || w <= 0 || srcRow < 0 || dstRow < n {
		panic("vec.Max3Stride2Edges: negative row offsets or overlapping output rows")
	}
	return max3s2EdgesAsm(&dst[0], &src[0], rows, n, w, x0, dr1, dr2, srcRow, dstRow)
}

// HasMax3Stride2Edges reports whether Max3Stride2Edges has a kernel here
// (AVX-512): with masked loads a window past the row's ends costs nothing
// extra, where the AVX2 path takes those outputs one at a time.
func HasMax3Stride2Edges() bool { return use512 }
