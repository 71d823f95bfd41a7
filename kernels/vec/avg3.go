package vec

// Avg3x3Rows is a 3x3 stride-1 average pool of rows output rows of n from
// rows laid out padded: dst[i*dstRow+x] = ((h(i, x) + h(i+1, x)) + h(i+2,
// x)) / div[i*divRow+x], h(r, x) = (src[r*srcRow+x] + src[r*srcRow+x+1]) +
// src[r*srcRow+x+2], so each src row holds at least n+2 values. The sums run
// in pooling's separable order (three along x, then three rows of those),
// so the bits are those of sum passes over the whole plane and a division
// after, in one pass here instead of four (an Inception pool on 1x64x56x56
// spent 70% of its time in the passes and the copies between them).
func Avg3x3Rows(dst []float32, dstRow int, src []float32, srcRow int, div []float32, divRow, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = dst[(rows-1)*dstRow+n-1]
	_ = src[(rows+1)*srcRow+n+1]
	_ = div[(rows-1)*divRow+n-1]
	if simdLen(n) > 0 {
		avg3RowsAsm(&dst[0], &src[0], &div[0], n, rows, srcRow, dstRow, divRow)
		return
	}
	h := func(r []float32, x int) float32 { return (r[x] + r[x+1]) + r[x+2] }
	for i := 0; i < rows; i++ {
		r0 := src[i*srcRow : i*srcRow+n+2]
		r1 := src[(i+1)*srcRow : (i+1)*srcRow+n+2]
		r2 := src[(i+2)*srcRow : (i+2)*srcRow+n+2]
		d, out := div[i*divRow:i*divRow+n], dst[i*dstRow:i*dstRow+n]
		for x := range out {
			out[x] = ((h(r0, x) + h(r1, x)) + h(r2, x)) / d[x]
		}
	}
}
