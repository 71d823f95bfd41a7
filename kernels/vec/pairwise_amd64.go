//go:build amd64 && !purego

package vec

//go:noescape
func maxAVX2(dst, a, b *float32, n int)

//go:noescape
func divAVX2(dst, a, b *float32, n int)

var (
	maxAsm = maxAVX2
	divAsm = divAVX2
)
