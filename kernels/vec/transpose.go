package vec

// TransposeCols8 writes columns [j, j+8) of the rows x cols matrix src as
// rows [j, j+8) of its transpose in dst (dst[(j+t)*rows+i] = src[i*cols+j+t]
// for t < 8 and every row i). Eight source rows at a time are loaded as eight
// vectors and transposed in registers, so every load and store moves 32
// contiguous bytes; a strided copy per destination row takes one value per
// visit of a source cache line.
func TransposeCols8(dst, src []float32, rows, cols, j int) {
	if rows <= 0 {
		return
	}
	_ = src[(rows-1)*cols+j+7]
	_ = dst[(j+7)*rows+rows-1]
	i := 0
	if n := simdLen(rows); n > 0 {
		transpose8Asm(&dst[j*rows], rows, &src[j], cols, n/8)
		i = n
	}
	for ; i < rows; i++ {
		s := src[i*cols+j : i*cols+j+8 : i*cols+j+8]
		d := dst[j*rows+i:]
		d[0], d[rows], d[2*rows], d[3*rows] = s[0], s[1], s[2], s[3]
		d[4*rows], d[5*rows], d[6*rows], d[7*rows] = s[4], s[5], s[6], s[7]
	}
}
