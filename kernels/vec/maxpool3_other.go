//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and this is never called.
func max3s2RowsAsm(dst, src *float32, n, rows, w, dstRow int) {}

func max3s2EdgesAsm(dst, src *float32, rows, n, w, x0, dr1, dr2, srcRow, dstRow int) bool {
	return false
}
