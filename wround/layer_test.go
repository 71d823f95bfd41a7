package wround

import (
	"math/rand/v2"
	"testing"
)

func TestRTNRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	l := &Layer{N: 3, K: 10, QMin: -8, QMax: 7, Group: 4}
	l.W = make([]float32, l.N*l.K)
	for i := range l.W {
		l.W[i] = float32(r.NormFloat64())
	}
	for range l.N * l.Groups() {
		l.Scale = append(l.Scale, 0.3)
		l.Zero = append(l.Zero, 0)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	if got := l.Groups(); got != 3 {
		t.Fatalf("groups %d, want 3 (the last one short)", got)
	}
	q := l.RTN()
	w := l.Dequantized(q)
	for i, v := range l.W {
		c := q[i]
		if c < -8 || c > 7 {
			t.Fatalf("code %d outside int4", c)
		}
		// Inside the grid nearest rounding is within half a step.
		if c > -8 && c < 7 && abs32(w[i]-v) > 0.15+1e-6 {
			t.Fatalf("w %v -> %v: more than half a step", v, w[i])
		}
	}
	// Re-quantizing the dequantized weights gives the same codes: what the
	// converter relies on when it writes chosen codes back as floats.
	for n := range l.N {
		for k := range l.K {
			if got := l.Quantize(n, k, w[n*l.K+k]); got != q[n*l.K+k] {
				t.Fatalf("(%d,%d): %d -> %d", n, k, q[n*l.K+k], got)
			}
		}
	}
	x := make([]float32, 5*l.K)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	if e := l.OutputMSE(q, x, 5); !(e > 0) {
		t.Fatalf("output MSE of RTN int4 is %v, want > 0", e)
	}
	l.Scale[0] = 0
	if l.Check() == nil {
		t.Fatal("a zero scale passed Check")
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
