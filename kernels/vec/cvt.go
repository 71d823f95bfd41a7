package vec

// F32ToI64 sets dst[i] = int64(src[i]): truncation toward zero, as ONNX Cast
// from float to an integer type. NaN and values outside int64's range give
// math.MinInt64, as Go's conversion does on amd64 (CVTTSS2SQ's "integer
// indefinite"); other architectures' Go conversions differ there, and the
// portable loop is Go's conversion.
func F32ToI64(dst []int64, src []float32) {
	dst = dst[:len(src)]
	if cvt512 && len(src) > 0 {
		f32ToI64AVX512(&dst[0], &src[0], len(src))
		return
	}
	for i, v := range src {
		dst[i] = int64(v)
	}
}

// I64ToF32 sets dst[i] = float32(src[i]), rounded once to nearest even.
func I64ToF32(dst []float32, src []int64) {
	dst = dst[:len(src)]
	if cvt512 && len(src) > 0 {
		i64ToF32AVX512(&dst[0], &src[0], len(src))
		return
	}
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// I32ToF32 sets dst[i] = float32(src[i]), rounded once to nearest even:
// the int32 accumulators of an integer product (MatMulInteger -> Cast).
func I32ToF32(dst []float32, src []int32) {
	dst = dst[:len(src)]
	if cvt512 && len(src) > 0 {
		i32ToF32AVX512(&dst[0], &src[0], len(src))
		return
	}
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// F32ToI32 sets dst[i] = int32(src[i]): truncation toward zero; NaN and
// values outside int32's range give math.MinInt32, as Go's conversion does
// on amd64 (other architectures' Go conversions differ there, and the
// portable loop is Go's conversion).
func F32ToI32(dst []int32, src []float32) {
	dst = dst[:len(src)]
	if cvt512 && len(src) > 0 {
		f32ToI32AVX512(&dst[0], &src[0], len(src))
		return
	}
	for i, v := range src {
		dst[i] = int32(v)
	}
}
