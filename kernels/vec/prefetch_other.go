//go:build !amd64 || purego

package vec

func prefetchAsm(x *float32, n int) {}
