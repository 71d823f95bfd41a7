//go:build !amd64 || purego

package vec

const cvt512 = false

func f32ToI64AVX512(dst *int64, src *float32, n int) {}
func i64ToF32AVX512(dst *float32, src *int64, n int) {}
func i32ToF32AVX512(dst *float32, src *int32, n int) {}
func f32ToI32AVX512(dst *int32, src *float32, n int) {}
