//go:build !amd64 || purego

package vec

const quant512 = false

func quant8AVX512(dst *byte, a *float32, n int, s, zp, lo, hi float32) {}

func requant8AVX512(dst *byte, acc *int32, n int, mult *float32, mstep int, zp, lo, hi float32) {}

func requantF8AVX512(dst *byte, src *float32, n int, add, mult, zp, lo, hi float32) {}

func qlAdd8AVX512(dst, x, y *byte, n, ystep, signed int, rx, ry, fixed, lo, hi float32) {}

func qlMul8AVX512(dst, x, y *byte, n, ystep, signed int, zx, zy int32, ratio, zc, lo, hi float32) {}

const lookupVBMI = false

func lookup8VBMI(dst, src *byte, n int, table *[256]byte) {}
