//go:build amd64 && !purego

package vec

//go:noescape
func rowMeansAVX2(dst, x *float32, rows, n int)
