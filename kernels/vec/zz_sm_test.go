package vec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkZZExpSum(b *testing.B) {
	for _, n := range []int{16, 64, 197, 1024, 4096} {
		x := make([]float32, n)
		d := make([]float32, n)
		for i := range x {
			x[i] = float32(rand.NormFloat64() * 3)
		}
		b.Run(fmt.Sprint("expsum", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ExpSum(d, x, 3)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
		})
		b.Run(fmt.Sprint("exp", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Exp(d, x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
		})
	}
}
