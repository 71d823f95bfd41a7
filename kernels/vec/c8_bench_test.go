package vec

import (
	"fmt"
	"testing"
)

// BenchmarkC8Taps times Run and Interleave on one block of 8 channels of a
// 3x3 depthwise convolution (pad 1) on an hw x hw map at stride s, the map
// in L1: ns per group of 8 output (Run) or input (Interleave) positions.
func BenchmarkC8Taps(b *testing.B) {
	for _, tc := range []struct{ hw, s int }{{7, 1}, {14, 1}, {14, 2}, {28, 2}} {
		hp := tc.hw + 2
		oh := (tc.hw-1)/tc.s + 1
		in := make([]int, tc.hw*tc.hw)
		for q := range in {
			in[q] = (q/tc.hw+1)*hp + q%tc.hw + 1
		}
		base := make([]int, oh*oh)
		for p := range base {
			base[p] = p/oh*tc.s*hp + p%oh*tc.s
		}
		var offs []int
		for ki := range 3 {
			for kj := range 3 {
				offs = append(offs, ki*hp+kj)
			}
		}
		t, err := NewC8Taps(hp*hp, in, base, offs)
		if err != nil {
			b.Fatal(err)
		}
		m := make([]float32, 8*hp*hp)
		src := make([]float32, 8*len(in))
		for i := range src {
			src[i] = float32(i%13) - 6
		}
		dst := make([]float32, 8*len(base))
		w, bias := make([]float32, 72), make([]float32, 8)
		for i := range w {
			w[i] = float32(i%5) * 0.25
		}
		ep := new(Epilogue8)
		for l := range 8 {
			ep.Set(l, Epilogue{Mul: 1.5, Add: 0.25, Lo: 0, Hi: 6})
		}
		chans := [8]int{}
		for l := range chans {
			chans[l] = l * len(in)
		}
		b.Run(fmt.Sprintf("run-%d-s%d", tc.hw, tc.s), func(b *testing.B) {
			for range b.N {
				_ = t.Run(dst, len(base), m, w, bias, ep, 8)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64((len(base)+7)/8), "ns/group")
		})
		b.Run(fmt.Sprintf("interleave-%d", tc.hw), func(b *testing.B) {
			for range b.N {
				_ = t.Interleave(m, src, &chans)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64((len(in)+7)/8), "ns/group")
		})
	}
}
