//go:build !amd64 || purego

package vec

// Without assembly simdLen is always 0 and this is never called.
func avg3RowsAsm(dst, src, div *float32, n, rows, srcRow, dstRow, divRow int) {}
