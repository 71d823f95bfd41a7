//go:build amd64 && !purego

package vec

//go:noescape
func gemvAVX2(y, x, a *float32, k, lda, n int)

func gemvAsm(y, x, a *float32, k, lda, n int) { gemvAVX2(y, x, a, k, lda, n) }
