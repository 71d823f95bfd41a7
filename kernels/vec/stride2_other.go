//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and this is never called.
func avg2s2RowsAsm(dst, src *float32, n, rows, w, dstRow int)       {}
func max2s2RowsAsm(dst, src *float32, n, rows, w, dstRow int)       {}
func double2RowsAsm(dst, src *float32, n, rows, srcRow, dstRow int) {}
