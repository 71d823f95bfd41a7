//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

func init() {
	usePowAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	usePowAVX512 = usePowAVX2 && cpu.X86.HasAVX512F
}

// powAVX2 runs pow32's fast lanes over n elements (a multiple of 8, at most
// powBlock). Bit g of the result is set, and group g's 8 elements are not
// stored, when one of them needs math.Pow.
//
//go:noescape
func powAVX2(dst, x, y *float32, n int) uint64

// powScalarAVX2 is powAVX2 with one y for all elements.
//
//go:noescape
func powScalarAVX2(dst, x *float32, n int, y float32) uint64

// powAVX512 is powAVX2 on eight float64 lanes a register, n a multiple of 16.
//
//go:noescape
func powAVX512(dst, x, y *float32, n int) uint64

// powScalarAVX512 is powScalarAVX2 on eight float64 lanes a register, n a
// multiple of 16.
//
//go:noescape
func powScalarAVX512(dst, x *float32, n int, y float32) uint64
