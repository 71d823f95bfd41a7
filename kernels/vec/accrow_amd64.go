//go:build amd64 && !purego

package vec

import "unsafe"

//go:noescape
func accRowAVX2(acc *float64, x, dst *float32, n int, exclusive bool)

//go:noescape
func accRowAVX512(acc *float64, x, dst *float32, n int, exclusive bool)

// accRowAsm takes n a multiple of 4; AVX-512 runs the multiple of 16 in it
// (twice AVX2's rate on a 768-wide row: CumSum 1x197x768 along axis 1).
func accRowAsm(acc *float64, x, dst *float32, n int, exclusive bool) {
	k := 0
	if use512 {
		k = n &^ 15
		if k > 0 {
			accRowAVX512(acc, x, dst, k, exclusive)
		}
	}
	if k < n {
		accRowAVX2((*float64)(unsafe.Add(unsafe.Pointer(acc), 8*k)), (*float32)(unsafe.Add(unsafe.Pointer(x), 4*k)), (*float32)(unsafe.Add(unsafe.Pointer(dst), 4*k)), n-k, exclusive)
	}
}

//go:noescape
func widenAddAVX2(acc *float64, x *float32, n int)

func widenAddAsm(acc *float64, x *float32, n int) { widenAddAVX2(acc, x, n) }
