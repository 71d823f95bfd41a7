//go:build amd64 && !purego

package vec

//go:noescape
func errorSumsAVX2(ref, test *float32, n int, l *[errLanes]float64)

func errorSumsAsm(ref, test *float32, n int, l *[errLanes]float64) {
	errorSumsAVX2(ref, test, n, l)
}
