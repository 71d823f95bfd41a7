//go:build !amd64 || purego

package igemm

// Available reports whether Mul runs the VNNI tile here: never without
// amd64 assembly.
func Available() bool { return false }

func tileFn(a []uint8, ld int, b []int8, k4 int, out []int32, ldo int, bias *[nr]int32) {
	tileGo(a, ld, b, k4, out, ldo, bias)
}

func useVNNIFor(bool) bool { return false }

func rowFn(a []uint8, b []int8, k4, panels int, out []int32) {
	rowGo(a, b, k4, panels, out)
}
