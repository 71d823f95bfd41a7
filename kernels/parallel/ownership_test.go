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

// BenchmarkOwnershipGrain splits a 128 KiB pass (the pass of
// BenchmarkOwnership) between two threads in alternating stretches of 256
// B to 16 KiB, each thread writing only its own, and times it beside one
// thread doing all of it. On the Zen 5 VM with its CPUs apart (round trip
// 460-490 ns), 2026-12-04: one thread 35 us; two threads 59-74 us with
// stretches of 256 B to 2 KiB, 33 us with 4 KiB (a page each), 25 with 8
// KiB and 21 with 16 KiB. Stretches that share a page cost as much as
// sharing the lines themselves, and even whole pages side by side cost a
// third more than 16 KiB runs: the prefetchers fetch by region, not by
// line, so a split worth making gives each thread runs of pages. A
// 32 x 32 float32 plane is one page, so two threads each taking half of
// every plane's rows (an NCHW convolution's output split in bands) share
// every page they write; the same pass with a 1 KiB gap left on either
// side of each half boundary (each thread's lines 1 KiB from the other's)
// still took 15-20 us against 10 for halves (see BenchmarkOwnership).
func BenchmarkOwnershipGrain(b *testing.B) {
	x := make([]float32, 32*1024) // 128 KiB
	b.Run("t1", func(b *testing.B) {
		for b.Loop() {
			pass(x)
		}
	})
	for _, grain := range []int{256, 1024, 2048, 4096, 8192, 16384} {
		b.Run(fmt.Sprintf("t2/%dB", grain), func(b *testing.B) {
			g := grain / 4
			for b.Loop() {
				For(2, 2, func(part int) {
					for o := part * g; o < len(x); o += 2 * g {
						pass(x[o : o+g])
					}
				})
			}
		})
	}
}

// pass is the ownership benchmarks' elementwise pass over d, in place:
// x = 1.0001x + 0.001, then a clamp at 0.
func pass(d []float32) {
	for i, v := range d {
		v = 1.0001*v + 0.001
		if v < 0 {
			v = 0
		}
		d[i] = v
	}
}

// BenchmarkOwnershipHandover times two passes over a 64 KiB buffer split in
// contiguous halves between two threads, the second pass's halves either
// as the first's ("kept": each thread writes the lines it wrote last) or
// swapped ("moved": each writes the lines the other wrote last, as a
// buffer the pool hands to a step split unlike the step that wrote it
// last). The difference is the cost of taking 32 KiB of lines from the
// other core's cache. On the Zen 5 VM with its CPUs apart (round trip
// 600-800 ns), 2026-12-05: kept 14.5-15.8 us, moved 18.6-19.8, one thread
// 20.7-21.5: 64 KiB of lines moved in bulk cost about 4 us (some 16 GB/s),
// which is the order of a memory-bound step's whole 1-thread time (a
// BatchNormalization and Relu over 295 KB of DenseNet's activations: 9 us).
func BenchmarkOwnershipHandover(b *testing.B) {
	x := make([]float32, 16*1024)
	half := len(x) / 2
	for _, moved := range []bool{false, true} {
		name := "kept"
		if moved {
			name = "moved"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				For(2, 2, func(part int) { pass(x[part*half : (part+1)*half]) })
				For(2, 2, func(part int) {
					if moved {
						part = 1 - part
					}
					pass(x[part*half : (part+1)*half])
				})
			}
		})
	}
	b.Run("t1", func(b *testing.B) {
		for b.Loop() {
			pass(x)
			pass(x)
		}
	})
}
