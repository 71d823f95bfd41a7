//go:build !amd64 || purego

package vec

func cmpScalarAsm(op int, o *bool, a *float32, n int, v float32) {}
func boolToF32Asm(dst *float32, b *bool, n int)                  {}
