//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func kernelAVX2(kc int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, acc bool)

var avx2Kernel = kernel{"avx2-6x16", 6, 16, func(kc int, a, b, c []float32, ldc int, acc bool) {
	// Bounds the assembly relies on: full panels and a full tile of C.
	_ = a[kc*6-1]
	_ = b[kc*16-1]
	_ = c[5*ldc+15]
	kernelAVX2(kc, &a[0], &b[0], &c[0], ldc, acc)
}}

var avx512Kernel = kernel{"avx512-12x32", 12, 32, func(kc int, a, b, c []float32, ldc int, acc bool) {
	_ = a[kc*12-1]
	_ = b[kc*32-1]
	_ = c[11*ldc+31]
	kernelAVX512(kc, &a[0], &b[0], &c[0], ldc, acc)
}}

// kernels lists the micro-kernels this machine can run, best first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, portableKernel)
}
