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
