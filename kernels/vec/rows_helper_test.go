package vec

import "testing"

// simdModes are the paths a row kernel's test runs: the Go loop, and the
// assembly where the machine has it.
func simdModes() []bool {
	if useSIMD {
		return []bool{false, true}
	}
	return []bool{false}
}

// outputRows runs f with the assembly on or off (simd) on rows output rows
// of n values, dstRow apart, in a buffer whose other values are a sentinel,
// fails t if f wrote any of them, and returns the buffer.
func outputRows(t *testing.T, simd bool, rows, dstRow, n int, f func(dst []float32)) []float32 {
	t.Helper()
	saved := useSIMD
	useSIMD = simd
	defer func() { useSIMD = saved }()
	dst := make([]float32, rows*dstRow+1)
	for i := range dst {
		dst[i] = 42
	}
	f(dst)
	for i, v := range dst {
		if (i%dstRow >= n || i == rows*dstRow) && v != 42 {
			t.Fatalf("simd=%v n=%d: wrote [%d] outside the output rows", simd, n, i)
		}
	}
	return dst
}
