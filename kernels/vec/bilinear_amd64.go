//go:build amd64 && !purego

package vec

//go:noescape
func quadsAVX2(dst, x *float32, perm *int32, w0, w1, w2, w3 *float32, n, row int)

func quadsAsm(dst, x *float32, perm *int32, w0, w1, w2, w3 *float32, n, row int) {
	quadsAVX2(dst, x, perm, w0, w1, w2, w3, n, row)
}
