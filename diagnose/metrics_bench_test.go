package diagnose_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/diagnose"
)

// BenchmarkAccAdd times the error metrics over a detector-sized output
// (3549 x 85 floats), in ns a value.
func BenchmarkAccAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	ref, test := make([]float32, 3549*85), make([]float32, 3549*85)
	for i := range ref {
		ref[i] = float32(r.NormFloat64())
		test[i] = ref[i] + float32(r.NormFloat64()*0.01)
	}
	var a diagnose.Acc
	for b.Loop() {
		a.Add(ref, test)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ref)), "ns/value")
}

// TestAccPairsMatchOneByOne: Acc adds values in vec.ErrorSums' four lanes;
// over lengths through its steps and tail its metrics match a
// one-value-at-a-time float64 loop, and a NaN anywhere (any lane, or the
// tail) makes the max abs error NaN.
func TestAccPairsMatchOneByOne(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 7, 1000, 1001} {
		ref, test := make([]float32, n), make([]float32, n)
		for i := range ref {
			ref[i] = float32(r.NormFloat64() * 3)
			test[i] = ref[i] + float32(r.NormFloat64()*0.1)
		}
		var rr, tt, rt, e2, mx float64
		for i := range ref {
			x, y := float64(ref[i]), float64(test[i])
			rr, tt, rt, e2 = rr+x*x, tt+y*y, rt+x*y, e2+(x-y)*(x-y)
			mx = math.Max(mx, math.Abs(x-y))
		}
		var a diagnose.Acc
		a.Add(ref, test)
		if got, want := a.Cosine(), rt/math.Sqrt(rr*tt); math.Abs(got-want) > 1e-12 {
			t.Errorf("n=%d: cosine %v, want %v", n, got, want)
		}
		if got, want := a.MSE(), e2/float64(n); math.Abs(got-want) > 1e-12*want {
			t.Errorf("n=%d: MSE %v, want %v", n, got, want)
		}
		if a.MaxAbs() != mx {
			t.Errorf("n=%d: max abs %v, want %v", n, a.MaxAbs(), mx)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			bad := append([]float32(nil), test...)
			bad[at] = float32(math.NaN())
			var b diagnose.Acc
			b.Add(ref, bad)
			if !math.IsNaN(b.MaxAbs()) {
				t.Errorf("n=%d, NaN at %d: max abs %v", n, at, b.MaxAbs())
			}
		}
	}
}
