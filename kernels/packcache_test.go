package kernels

import (
	"math"
	"sync"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/testmodels"
)

// TestPackCacheSharesEqualWeights: sessions of two separately built copies
// of a model (equal numbers, different arrays) made with one cache pack
// each weight once, the second session finds every pack of the first, and
// both compute the bits of a session without the cache; a model with other
// weights finds none. Conv paths (3x3, pointwise with streamed and narrow
// packs, co-tiles), MatMul and Gemm weights are covered by the families.
func TestPackCacheSharesEqualWeights(t *testing.T) {
	for _, name := range []string{"resnet20", "mobilenetv2", "transformer", "yolo-silu"} {
		t.Run(name, func(t *testing.T) {
			build := func(seed uint64) *graph.Model {
				m, err := testmodels.Build(name, seed)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			m1 := build(1)
			ins, err := testmodels.Samples(name, m1, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			in := ins[0]
			run := func(m *graph.Model, c *PackCache) map[string]*graph.Tensor {
				return compileAndRun(t, m, Options{Threads: 2, Packs: c}, in)
			}
			want := run(build(1), nil)
			c := NewPackCache()
			first := run(m1, c)
			h0, made := c.Stats()
			if h0 != 0 || made == 0 {
				t.Fatalf("first session: %d hits, %d packs made; want 0 and some", h0, made)
			}
			second := run(build(1), c)
			h1, m1n := c.Stats()
			if h1 != made || m1n != made {
				t.Errorf("second session of equal weights: %d hits, %d packs made in all; want %d and %d", h1, m1n, made, made)
			}
			other := run(build(2), c)
			h2, m2n := c.Stats()
			if h2 != h1 || m2n != 2*made {
				t.Errorf("session of other weights: %d hits, %d packs made in all; want %d and %d", h2, m2n, h1, 2*made)
			}
			wantOther := run(build(2), nil)
			for o, w := range want {
				sameTensorBits(t, "first "+o, first[o], w)
				sameTensorBits(t, "second "+o, second[o], w)
				sameTensorBits(t, "other "+o, other[o], wantOther[o])
			}
			t.Logf("%s: %d packs per session", name, made)
		})
	}
}

// compileAndRun makes a session of m and runs it once on in.
func compileAndRun(t *testing.T, m *graph.Model, opts Options, in map[string]*graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	s, err := NewSession(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackCacheKeys: a pack is found by the numbers' bits and the packing,
// not by the array: an equal copy finds it, -0 for 0 does not, nor the
// same numbers read as another shape or transposed; lookups from many
// goroutines at once agree.
func TestPackCacheKeys(t *testing.T) {
	c := NewPackCache()
	w := make([]float32, 64*48)
	for i := range w {
		w[i] = float32(i%13) - 6
	}
	a := c.packA(64, 48, w)
	if got := c.packA(64, 48, append([]float32(nil), w...)); got != a {
		t.Error("an equal copy of the weights did not find their pack")
	}
	neg := append([]float32(nil), w...)
	neg[6] = float32(math.Copysign(0, -1)) // w[6] is +0
	if w[6] != 0 || math.Signbit(float64(w[6])) {
		t.Fatalf("w[6] = %v, want +0", w[6])
	}
	if got := c.packA(64, 48, neg); got == a {
		t.Error("-0 in place of 0 found the pack of +0")
	}
	if got := c.packA(48, 64, w); got == a {
		t.Error("the numbers read as 48x64 found the 64x48 pack")
	}
	b := c.packB(48, 64, w, false)
	if bt := c.packB(64, 48, w, true); bt == b {
		t.Error("the transposed operand found the plain one's pack")
	}
	hits, made := c.Stats()
	if hits != 1 || made != 5 {
		t.Errorf("%d hits, %d packs made; want 1 and 5", hits, made)
	}
	// The pack found is what packing again makes.
	ref := gemm.PackA(64, 48, 1, gemm.Matrix{Data: w, Stride: 48})
	out1, out2 := make([]float32, 64*8), make([]float32, 64*8)
	x := make([]float32, 48*8)
	for i := range x {
		x[i] = float32(i%7) * 0.25
	}
	gemm.MulPackedA(ref, 8, gemm.Matrix{Data: x, Stride: 8}, 0, out1, 8, 1)
	gemm.MulPackedA(a, 8, gemm.Matrix{Data: x, Stride: 8}, 0, out2, 8, 1)
	for i := range out1 {
		if math.Float32bits(out1[i]) != math.Float32bits(out2[i]) {
			t.Fatalf("product with the cached pack differs at %d: %v vs %v", i, out2[i], out1[i])
		}
	}

	var wg sync.WaitGroup
	got := make([]*gemm.PackedA, 8)
	c2 := NewPackCache()
	for g := range got {
		wg.Go(func() { got[g] = c2.packA(64, 48, append([]float32(nil), w...)) })
	}
	wg.Wait()
	for g := range got {
		if got[g] != got[0] {
			t.Fatalf("goroutine %d got another pack than goroutine 0", g)
		}
	}
	if hits, made := c2.Stats(); hits+made != 8 || made < 1 {
		t.Errorf("8 concurrent lookups: %d hits, %d made", hits, made)
	}
}
