package calib

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDistributionQuantiles: quantiles within one bin of the exact ones, exact
// extremes, moments and zero share, fed in uneven batches; zeros are a point
// mass at 0.
func TestDistributionQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []float64
	d := NewDistribution(1024)
	for batch := 0; batch < 7; batch++ {
		x := make([]float32, 1000+batch*333)
		for i := range x {
			v := r.NormFloat64() * float64(1+batch)
			if i%3 == 0 {
				v = 0 // a ReLU-like share of exact zeros
			}
			x[i] = float32(v)
			all = append(all, float64(x[i]))
		}
		d.Observe(x)
	}
	slices.Sort(all)
	width := math.Max(-all[0], all[len(all)-1]) / 1024
	for _, q := range []float64{0.01, 0.25, 0.4, 0.5, 0.75, 0.99} {
		exact := all[int(q*float64(len(all)))]
		if got := d.Quantile(q); math.Abs(got-exact) > width {
			t.Errorf("quantile %.2f: %v, exact %v (bin %v)", q, got, exact, width)
		}
	}
	var sum, zeros float64
	for _, v := range all {
		sum += v
		if v == 0 {
			zeros++
		}
	}
	mean := sum / float64(len(all))
	if d.Min() != all[0] || d.Max() != all[len(all)-1] || math.Abs(d.Mean()-mean) > 1e-9 || d.ZeroShare() != zeros/float64(len(all)) {
		t.Errorf("min %v max %v mean %v (want %v) zero share %v", d.Min(), d.Max(), d.Mean(), mean, d.ZeroShare())
	}
	lo, hi, c := d.Histogram(64)
	var n float64
	for _, v := range c {
		n += v
	}
	if len(c) > 64 || lo > all[0] || hi < all[len(all)-1] || n != float64(len(all)) {
		t.Errorf("histogram [%v, %v] %d bins holding %v of %d", lo, hi, len(c), n, len(all))
	}
}
