package vec

// Avg2x2Stride2Rows is a 2x2 stride-2 average pool of rows whole output
// rows of n: dst[i*dstRow+j] = ((r[2j] + r[2j+1]) + (s[2j] + s[2j+1])) *
// 0.25, r and s the rows 2i and 2i+1 of src (rows w apart), each holding at
// least 2n values. The sums run in AveragePool's order (along x, then y)
// and a quarter is exact as a multiplication, so every path gives the
// plain loop's bits.
func Avg2x2Stride2Rows(dst []float32, dstRow int, src []float32, w, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = dst[(rows-1)*dstRow+n-1]
	_ = src[2*(rows-1)*w+w+2*n-1] // the last window's last value
	if simdLen(n) > 0 {
		avg2s2RowsAsm(&dst[0], &src[0], n, rows, w, dstRow)
		return
	}
	for i := 0; i < rows; i++ {
		r0 := src[2*i*w : 2*i*w+2*n]
		r1 := src[(2*i+1)*w:][:len(r0)]
		out := dst[i*dstRow : i*dstRow+n]
		for j := range out {
			a, b := r0[2*j:2*j+2], r1[2*j:2*j+2] // one bounds check each
			out[j] = ((a[0] + a[1]) + (b[0] + b[1])) * 0.25
		}
	}
}

// Max2x2Stride2Rows is a 2x2 stride-2 max pool of rows whole output rows of
// n: dst[i*dstRow+j] = max(max(r[2j], s[2j]), max(r[2j+1], s[2j+1])), r and
// s the rows 2i and 2i+1 of src (rows w apart), each holding at least 2n
// values, max being Max's (a NaN wins, the later one of two; of equal
// values the first is kept). That is the order pooling's separable path
// takes (down the columns, then across), so the bits are its bits.
func Max2x2Stride2Rows(dst []float32, dstRow int, src []float32, w, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = dst[(rows-1)*dstRow+n-1]
	_ = src[2*(rows-1)*w+w+2*n-1] // the last window's last value
	if simdLen(n) > 0 {
		max2s2RowsAsm(&dst[0], &src[0], n, rows, w, dstRow)
		return
	}
	for i := 0; i < rows; i++ {
		r0 := src[2*i*w : 2*i*w+2*n]
		r1 := src[(2*i+1)*w:][:len(r0)]
		out := dst[i*dstRow : i*dstRow+n]
		for j := range out {
			a, b := r0[2*j:2*j+2], r1[2*j:2*j+2] // one bounds check each
			out[j] = maxOf2(maxOf2(a[0], b[0]), maxOf2(a[1], b[1]))
		}
	}
}

// Double2Rows is a nearest 2x upsampling of rows rows of n values: src row
// i (at src[i*srcRow:]) goes to dst rows 2i and 2i+1 (at dst[2i*dstRow:]
// and dst[(2i+1)*dstRow:]), each value twice side by side (2n values a row).
// dst must not overlap src.
func Double2Rows(dst []float32, dstRow int, src []float32, srcRow, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = dst[(2*rows-1)*dstRow+2*n-1]
	_ = src[(rows-1)*srcRow+n-1]
	if simdLen(n) > 0 {
		double2RowsAsm(&dst[0], &src[0], n, rows, srcRow, dstRow)
		return
	}
	for i := 0; i < rows; i++ {
		in := src[i*srcRow : i*srcRow+n]
		d0 := dst[2*i*dstRow : 2*i*dstRow+2*n]
		d1 := dst[(2*i+1)*dstRow:][:len(d0)]
		for j, v := range in {
			d0[2*j], d0[2*j+1] = v, v
			d1[2*j], d1[2*j+1] = v, v
		}
	}
}
