//go:build amd64 && !purego

package vec

//go:noescape
func addEveryOtherAVX2(dst, x *float32, n int)

func addEveryOtherAsm(dst, x *float32, n int) { addEveryOtherAVX2(dst, x, n) }
