package calib

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// FuzzHistogram feeds arbitrary float32 bit patterns (NaN, infinities,
// subnormals, huge and tiny values) in two batches to a histogram observer:
// no panic, every finite value counted in the bin direct binning at the final
// scale gives, and a range (or an error) from every kind.
func FuzzHistogram(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 128, 191, 0, 0, 0, 0}, uint8(1), uint8(16))
	f.Add([]byte{1, 0, 0, 128, 0, 0, 128, 127, 255, 255, 127, 127, 0, 0, 192, 127}, uint8(2), uint8(64))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8, bins uint8) {
		x := make([]float32, len(data)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		k := min(int(cut), len(x))
		for _, kind := range []string{"entropy", "percentile", "mse"} {
			o, err := New(Config{Kind: kind, Bins: 16 + int(bins)})
			if err != nil {
				t.Fatal(err)
			}
			o.Observe(x[:k])
			o.Observe(x[k:])
			if lo, hi, err := o.Range(); err == nil && (lo > hi || lo != lo || hi != hi) {
				t.Fatalf("%s: range [%v, %v]", kind, lo, hi)
			}
			h := o.(*histObserver)
			if h.counts == nil {
				continue
			}
			want := make([]uint64, len(h.counts))
			scale := math.Ldexp(float64(h.n), -h.k)
			for _, v := range x {
				if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
					want[h.n+int(math.Floor(f*scale))]++
				}
			}
			if !slices.Equal(h.counts, want) {
				t.Fatalf("%s: counts differ from direct binning", kind)
			}
		}
	})
}
