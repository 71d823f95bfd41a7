package calib

import "testing"

// BenchmarkLanesCount is the counting loop alone on one goroutine, per data
// pattern: runs of one value (zeros, ones) take the one-add path; values
// cycling over 16 bins show the stall of counters hit again within a step or
// two; ReLU-like data mixes zeros and spread values at random.
func BenchmarkLanesCount(b *testing.B) {
	g := gaussian(1<<20, 5)
	zeros := make([]float32, 1<<20)
	ones := make([]float32, 1<<20)
	cyc16 := make([]float32, 1<<20)
	cyc64 := make([]float32, 1<<20)
	for i := range ones {
		ones[i] = 1
		cyc16[i] = float32(i%16) / 8
		cyc64[i] = float32(i%64) / 8
	}
	relu := make([]float32, len(g))
	for i, v := range g {
		relu[i] = max(v, 0)
	}
	for name, x := range map[string][]float32{"relu": relu, "gaussian": g, "zeros": zeros, "ones": ones, "cyc16": cyc16, "cyc64": cyc64} {
		b.Run(name, func(b *testing.B) {
			l := getLanes(8192)
			b.SetBytes(int64(4 * len(x)))
			for i := 0; i < b.N; i++ {
				l.count(x, 512, 4096, 4096)
			}
		})
	}
}
