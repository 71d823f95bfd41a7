//go:build !amd64 || purego

package vec

func quadsAsm(dst, x *float32, perm *int32, w0, w1, w2, w3 *float32, n, row int) {}
