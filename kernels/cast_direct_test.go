package kernels

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestCastDirectMatchesGeneral: the direct conversions give the general
// path's values for every pair they take: fractions of both signs (truncated
// toward zero), +-0, large and small magnitudes within the target's range,
// int64 up to 2^53 (exact through float64 too), bools.
func TestCastDirectMatchesGeneral(t *testing.T) {
	defer func() { noCastDirect = false }()
	r := rand.New(rand.NewPCG(13, 14))
	f32 := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.99, -1.99, 1e9, -1e9, 3.3e-30, 16777217}
	for range 100 {
		f32 = append(f32, float32(r.NormFloat64()*1000))
	}
	f64 := make([]float64, len(f32))
	for i, v := range f32 {
		f64[i] = float64(v) * 1.0000001
	}
	i64 := []int64{0, 1, -1, 1 << 53, -(1 << 53), 123456789, 16777217}
	i32 := []int32{0, 1, -1, 1 << 30, -(1 << 30), 16777217}
	bools := []bool{true, false, true}
	for _, c := range []struct {
		x  *graph.Tensor
		to []graph.DataType
	}{
		{graph.Float32Tensor([]int{len(f32)}, f32), []graph.DataType{graph.Int64, graph.Int32, graph.Double, graph.Bool}},
		{graph.Int64Tensor([]int{len(i64)}, i64), []graph.DataType{graph.Float, graph.Double}},
		{tensorOf(t, graph.Int32, []int{len(i32)}, i32), []graph.DataType{graph.Float}},
		{tensorOf(t, graph.Double, []int{len(f64)}, f64), []graph.DataType{graph.Float}},
		{tensorOf(t, graph.Bool, []int{len(bools)}, bools), []graph.DataType{graph.Float}},
	} {
		for _, to := range c.to {
			noCastDirect = true
			want, err := castTensor(c.x, to)
			if err != nil {
				t.Fatal(err)
			}
			noCastDirect = false
			got, err := castTensor(c.x, to)
			if err != nil {
				t.Fatal(err)
			}
			if !castDirect(c.x, graph.NewTensor(to, c.x.Shape)) {
				t.Fatalf("%s to %s: not a direct pair", c.x.DType.Short(), to.Short())
			}
			if !reflect.DeepEqual(want.Data(), got.Data()) {
				t.Fatalf("%s to %s: %v, general path %v", c.x.DType.Short(), to.Short(), got.Data(), want.Data())
			}
		}
	}
}
