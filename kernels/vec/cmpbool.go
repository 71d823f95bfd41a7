package vec

import "unsafe"

// Comparison predicates of CmpScalar, as Go's float32 operators take them
// (any comparison with NaN false).
const (
	CmpEqual = iota
	CmpLess
	CmpGreater
	CmpLessOrEqual
	CmpGreaterOrEqual
)

// CmpScalar sets o[i] = a[i] <op> v, op one of the Cmp predicates.
func CmpScalar(op int, o []bool, a []float32, v float32) {
	n := len(a)
	o = o[:n]
	k := 0
	if useSIMD {
		k = n &^ 31
		if k > 0 {
			cmpScalarAsm(op, unsafe.SliceData(o), &a[0], k, v)
		}
	}
	for i := k; i < n; i++ {
		x := a[i]
		switch op {
		case CmpEqual:
			o[i] = x == v
		case CmpLess:
			o[i] = x < v
		case CmpGreater:
			o[i] = x > v
		case CmpLessOrEqual:
			o[i] = x <= v
		default:
			o[i] = x >= v
		}
	}
}

// BoolToF32 sets dst[i] = 1 for true and 0 for false (Cast from bool).
func BoolToF32(dst []float32, b []bool) {
	n := len(b)
	dst = dst[:n]
	k := 0
	if useSIMD {
		k = n &^ 7
		if k > 0 {
			boolToF32Asm(&dst[0], unsafe.SliceData(b), k)
		}
	}
	// A bool's byte is 0 or 1: converted without a branch per element.
	for i, x := range unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(b))), n)[k:] {
		dst[k+i] = float32(x & 1)
	}
}
