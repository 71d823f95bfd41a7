package parallel

import (
	"fmt"
	"testing"
)

// BenchmarkOwnership times one elementwise pass (x = 1.0001x + 0.001, then
// a clamp at 0) over a 16 x 32 x 32 float32 tensor (a CIFAR layer's
// activations, 64 KiB) on 1 and 2 threads, with the work split two ways:
// "halves", each thread a contiguous half (planes 0-7 and 8-15, as a split
// by output channels gives), and "bands", each thread the same rows of
// every plane (rows 0-15 and 16-31: 16 stretches of 2 KiB each, as a split
// of an NCHW convolution's output rows gives). Each thread writes only its
// own part, pass after pass; nothing is read across threads.
//
// On a 2-vCPU AMD VM whose CPUs sat on different dies (a cache line took
// ~650 ns from one to the other and back), two threads took 7.7-8.0 us as
// halves and 21.8 us as bands, against 10.5-11.6 us on one thread: the
// hardware prefetchers run past the end of each 2 KiB stretch into the
// other thread's lines, and every such line then moves between the dies
// twice a pass. (The same passes through vec.Affine and vec.Clip: a
// thread's half 0.54 us as halves, 4.4 us as bands, the whole tensor on
// one thread 1.1 us.) This is why, on that VM, ResNet-20's 32 x 32 layers
// (their output rows split in two bands, then a BatchNormalization
// epilogue over each band) ran no faster on 2 threads than on 1, while the
// same convolutions with their bias and Relu in the GEMM's stores took
// 0.74x. The ns/float metric is per float of the whole tensor.
func BenchmarkOwnership(b *testing.B) {
	const planes, plane = 16, 32 * 32
	x := make([]float32, planes*plane)
	pass := func(d []float32) {
		for i, v := range d {
			v = 1.0001*v + 0.001
			if v < 0 {
				v = 0
			}
			d[i] = v
		}
	}
	for _, threads := range []int{1, 2} {
		for _, split := range []string{"halves", "bands"} {
			b.Run(fmt.Sprintf("%s/t%d", split, threads), func(b *testing.B) {
				for b.Loop() {
					For(threads, threads, func(part int) {
						if split == "halves" {
							pass(x[part*len(x)/threads : (part+1)*len(x)/threads])
							return
						}
						r0, r1 := part*plane/threads, (part+1)*plane/threads
						for p := 0; p < planes; p++ {
							pass(x[p*plane+r0 : p*plane+r1])
						}
					})
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/float")
			})
		}
	}
}
