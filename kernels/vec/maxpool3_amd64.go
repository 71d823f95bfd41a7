//go:build amd64 && !purego

package vec

//go:noescape
func max3s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)

func max3s2RowsAsm(dst, src *float32, n, rows, w, dstRow int) {
	max3s2RowsAVX2(dst, src, n, rows, w, dstRow)
}
