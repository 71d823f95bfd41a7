//go:build amd64 && !purego

package vec

//go:noescape
func max3s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)

func max3s2RowsAsm(dst, src *float32, n, rows, w, dstRow int) {
	max3s2RowsAVX2(dst, src, n, rows, w, dstRow)
}

//go:noescape
func max3s2EdgesAVX512(dst, src *float32, rows, n, w, x0, dr1, dr2, srcRow, dstRow int)

func max3s2EdgesAsm(dst, src *float32, rows, n, w, x0, dr1, dr2, srcRow, dstRow int) bool {
	if !use512 {
		return false
	}
	max3s2EdgesAVX512(dst, src, rows, n, w, x0, dr1, dr2, srcRow, dstRow)
	return true
}
