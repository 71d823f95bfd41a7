//go:build amd64 && !purego

package vec

//go:noescape
func prefetchT1(x *float32, n int)

func prefetchAsm(x *float32, n int) { prefetchT1(x, n) }
