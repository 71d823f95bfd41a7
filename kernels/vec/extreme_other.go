//go:build !amd64 || purego

package vec

func extremeIntoAsm(dst, x *float32, n int, isMax bool)               {}
func extremeFoldAsm(lanes *[8]float32, x *float32, n int, isMax bool) {}
