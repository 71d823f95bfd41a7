//go:build !amd64 || purego

package vec

func rowsOpAsm(dst, a, row *float32, rows, n int, mul bool) bool { return false }
