//go:build amd64 && !purego

package vec

//go:noescape
func avg3RowsAVX2(dst, src, div *float32, n, rows, srcRow, dstRow, divRow int)

func avg3RowsAsm(dst, src, div *float32, n, rows, srcRow, dstRow, divRow int) {
	avg3RowsAVX2(dst, src, div, n, rows, srcRow, dstRow, divRow)
}
