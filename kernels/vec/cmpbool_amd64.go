//go:build amd64 && !purego

package vec

//go:noescape
func cmpScalarAVX2(op int, o *bool, a *float32, n int, v float32)

//go:noescape
func boolToF32AVX2(dst *float32, b *bool, n int)

func cmpScalarAsm(op int, o *bool, a *float32, n int, v float32) { cmpScalarAVX2(op, o, a, n, v) }
func boolToF32Asm(dst *float32, b *bool, n int)                  { boolToF32AVX2(dst, b, n) }
