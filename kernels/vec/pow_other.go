//go:build !amd64 || purego

package vec

// Without assembly usePowAVX2 and usePowAVX512 stay false and these are
// never called.
func powAVX2(dst, x, y *float32, n int) uint64                 { return 0 }
func powScalarAVX2(dst, x *float32, n int, y float32) uint64   { return 0 }
func powAVX512(dst, x, y *float32, n int) uint64               { return 0 }
func powScalarAVX512(dst, x *float32, n int, y float32) uint64 { return 0 }
