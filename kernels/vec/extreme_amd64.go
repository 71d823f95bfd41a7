//go:build amd64 && !purego

package vec

//go:noescape
func extremeIntoAVX2(dst, x *float32, n int, isMax bool)

//go:noescape
func extremeFoldAVX2(lanes *[8]float32, x *float32, n int, isMax bool)

func extremeIntoAsm(dst, x *float32, n int, isMax bool) { extremeIntoAVX2(dst, x, n, isMax) }
func extremeFoldAsm(lanes *[8]float32, x *float32, n int, isMax bool) {
	extremeFoldAVX2(lanes, x, n, isMax)
}
