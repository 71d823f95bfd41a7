//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// cvt512: AVX-512DQ's packed conversions between float32 and int64, which
// round as Go's scalar ones do on amd64 (truncating to integer, nearest even
// to float), eight to sixteen a step instead of one.
var cvt512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

//go:noescape
func f32ToI64AVX512(dst *int64, src *float32, n int)

//go:noescape
func i64ToF32AVX512(dst *float32, src *int64, n int)

//go:noescape
func i32ToF32AVX512(dst *float32, src *int32, n int)

//go:noescape
func f32ToI32AVX512(dst *int32, src *float32, n int)
