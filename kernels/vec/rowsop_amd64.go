//go:build amd64 && !purego

package vec

//go:noescape
func rowsOpAVX512(dst, a, row *float32, rows, n int, mul bool)

// rowsOpAsm runs rowsOpAVX512 and reports true, or false where the CPU
// has no AVX-512.
func rowsOpAsm(dst, a, row *float32, rows, n int, mul bool) bool {
	if !use512 {
		return false
	}
	rowsOpAVX512(dst, a, row, rows, n, mul)
	return true
}
