//go:build amd64 && !purego

package vec

//go:noescape
func avg2s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)

func avg2s2RowsAsm(dst, src *float32, n, rows, w, dstRow int) {
	avg2s2RowsAVX2(dst, src, n, rows, w, dstRow)
}

//go:noescape
func double2RowsAVX2(dst, src *float32, n, rows, srcRow, dstRow int)

func double2RowsAsm(dst, src *float32, n, rows, srcRow, dstRow int) {
	double2RowsAVX2(dst, src, n, rows, srcRow, dstRow)
}

//go:noescape
func max2s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)

func max2s2RowsAsm(dst, src *float32, n, rows, w, dstRow int) {
	max2s2RowsAVX2(dst, src, n, rows, w, dstRow)
}
