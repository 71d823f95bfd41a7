//go:build amd64 && !purego

package vec

//go:noescape
func transpose8AVX(dst *float32, ldd int, src *float32, lds int, blocks int)

func transpose8Asm(dst *float32, ldd int, src *float32, lds int, blocks int) {
	transpose8AVX(dst, ldd, src, lds, blocks)
}
