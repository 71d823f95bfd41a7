package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
)

func reductionAttr(red string) []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{graph.AttrStringOf("reduction", red)}
}

// TestScatterGatherInt64Exact: int64 values beyond 2^53 (INT64_MIN masks,
// large ids) pass through ScatterND, ScatterElements and GatherND bit for
// bit, and add sums them in integers (the float64 form rounded 2^53+1 to
// 2^53).
func TestScatterGatherInt64Exact(t *testing.T) {
	big := []int64{math.MinInt64, math.MaxInt64, 1<<53 + 1, -(1<<60 + 3), 1<<62 + 7, 9007199254740993}
	x := graph.Int64Tensor([]int{3, 2}, slices.Clone(big))
	upd := graph.Int64Tensor([]int{1, 2}, []int64{math.MaxInt64 - 1, math.MinInt64 + 1})
	got := runOp(t, "ScatterND", nil, x, graph.Int64Tensor([]int{1, 1}, []int64{1}), upd)[0].Int64s()
	want := []int64{big[0], big[1], math.MaxInt64 - 1, math.MinInt64 + 1, big[4], big[5]}
	if !slices.Equal(got, want) {
		t.Errorf("ScatterND none: %v, want %v", got, want)
	}
	one := graph.Int64Tensor([]int{1, 2}, []int64{1, 1})
	got = runOp(t, "ScatterND", reductionAttr("add"), x, graph.Int64Tensor([]int{1, 1}, []int64{2}), one)[0].Int64s()
	want = []int64{big[0], big[1], big[2], big[3], 1<<62 + 8, 9007199254740994}
	if !slices.Equal(got, want) {
		t.Errorf("ScatterND add: %v, want %v", got, want)
	}
	got = runOp(t, "ScatterElements", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)},
		x, graph.Int64Tensor([]int{1, 1}, []int64{-1}), graph.Int64Tensor([]int{1, 1}, []int64{math.MinInt64 + 5}))[0].Int64s()
	want = []int64{big[0], math.MinInt64 + 5, big[2], big[3], big[4], big[5]}
	if !slices.Equal(got, want) {
		t.Errorf("ScatterElements none: %v, want %v", got, want)
	}
	got = runOp(t, "ScatterElements", reductionAttr("min"),
		x, graph.Int64Tensor([]int{1, 2}, []int64{0, 2}), graph.Int64Tensor([]int{1, 2}, []int64{math.MinInt64 + 1, 9007199254740992}))[0].Int64s()
	want = []int64{big[0], big[1], big[2], big[3], big[4], 9007199254740992}
	if !slices.Equal(got, want) {
		t.Errorf("ScatterElements min: %v, want %v", got, want)
	}
	got = runOp(t, "GatherND", nil, x, graph.Int64Tensor([]int{3, 2}, []int64{2, 1, 0, 0, -1, 0}))[0].Int64s()
	want = []int64{big[5], big[0], big[4]}
	if !slices.Equal(got, want) {
		t.Errorf("GatherND: %v, want %v", got, want)
	}
}

// combineRef is a reduction written out for the reference, in T's arithmetic.
func combineRef[T number](red string, o, u T) T {
	switch red {
	case "add":
		return o + u
	case "mul":
		return o * u
	case "max":
		if u > o || u != u {
			return u
		}
		return o
	case "min":
		if u < o || u != u {
			return u
		}
		return o
	}
	return u
}

// scatterNDRef applies the updates one index tuple after another, each
// element by its coordinates.
func scatterNDRef[T number](x []T, xs []int, idx []int64, is []int, upd []T, red string) []T {
	out := slices.Clone(x)
	last := is[len(is)-1]
	slice := graph.Numel(xs[last:])
	for t := 0; t < graph.Numel(is[:len(is)-1]); t++ {
		base := 0
		for k := 0; k < len(xs); k++ {
			c := 0
			if k < last {
				c = int(idx[t*last+k])
				if c < 0 {
					c += xs[k]
				}
			}
			base = base*xs[k] + c
		}
		for j := 0; j < slice; j++ {
			out[base+j] = combineRef(red, out[base+j], upd[t*slice+j])
		}
	}
	return out
}

// scatterElementsRef: each update element at its own coordinates, the
// axis coordinate taken from the indices.
func scatterElementsRef[T number](x []T, xs []int, idx []int64, is []int, upd []T, ax int, red string) []T {
	out := slices.Clone(x)
	coord := make([]int, len(is))
	for e := range idx {
		rem := e
		for d := len(is) - 1; d >= 0; d-- {
			coord[d] = rem % is[d]
			rem /= is[d]
		}
		coord[ax] = int(idx[e])
		if coord[ax] < 0 {
			coord[ax] += xs[ax]
		}
		at := 0
		for d := range xs {
			at = at*xs[d] + coord[d]
		}
		out[at] = combineRef(red, out[at], upd[e])
	}
	return out
}

// randomValues fills n values of T: small integers, so that products stay
// in range, and for float32 fractions whose sums round.
func randomValues[T number](r *rand.Rand, n int) []T {
	v := make([]T, n)
	for i := range v {
		v[i] = T(r.IntN(7) - 2)
		if f, ok := any(&v[i]).(*float32); ok {
			*f = float32(r.NormFloat64()) * 1000
		}
	}
	return v
}

// checkScatterTyped runs ScatterND and ScatterElements on random cases of
// element type T (dt) with every reduction against the references:
// duplicate indices (in index order), negative indices, 1 and 2 threads.
func checkScatterTyped[T number](t *testing.T, dt graph.DataType, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 3))
	for trial := 0; trial < 40; trial++ {
		parallel.ForceSplit([]int{0, 3}[trial%2])
		rank := 1 + r.IntN(3)
		xs := make([]int, rank)
		for d := range xs {
			xs[d] = 1 + r.IntN(5)
		}
		x := randomValues[T](r, graph.Numel(xs))
		for _, red := range []string{"none", "add", "mul", "max", "min"} {
			attrs := reductionAttr(red)
			// ScatterND: depth 1..rank, up to 6 tuples (duplicates likely).
			last := 1 + r.IntN(rank)
			is := []int{1 + r.IntN(6), last}
			idx := make([]int64, graph.Numel(is))
			for i := range idx {
				d := xs[i%last]
				idx[i] = int64(r.IntN(2*d) - d)
			}
			us := append([]int{is[0]}, xs[last:]...)
			upd := randomValues[T](r, graph.Numel(us))
			want := scatterNDRef(x, xs, idx, is, upd, red)
			for _, threads := range []int{1, 2} {
				out, err := runOpThreads(threads, "ScatterND", attrs, tensorOf(t, dt, xs, x), graph.Int64Tensor(is, idx), tensorOf(t, dt, us, upd))
				if err != nil {
					t.Fatalf("ScatterND %s %s: %v", dt.Short(), red, err)
				}
				if got := out[0].Data().([]T); !slices.Equal(got, want) {
					t.Fatalf("ScatterND %s %s data %v indices %v %v, %d threads:\n got %v\nwant %v", dt.Short(), red, xs, is, idx, threads, got, want)
				}
			}
			// ScatterElements: any axis, indices no larger than data off it.
			ax := r.IntN(rank)
			es := make([]int, rank)
			for d := range es {
				es[d] = 1 + r.IntN(xs[d])
			}
			es[ax] = 1 + r.IntN(6)
			eidx := make([]int64, graph.Numel(es))
			for i := range eidx {
				eidx[i] = int64(r.IntN(2*xs[ax]) - xs[ax])
			}
			eupd := randomValues[T](r, len(eidx))
			want = scatterElementsRef(x, xs, eidx, es, eupd, ax, red)
			eattrs := append(attrs, graph.AttrIntOf("axis", int64(ax-rank*(trial%2))))
			for _, threads := range []int{1, 2} {
				out, err := runOpThreads(threads, "ScatterElements", eattrs, tensorOf(t, dt, xs, x), graph.Int64Tensor(es, eidx), tensorOf(t, dt, es, eupd))
				if err != nil {
					t.Fatalf("ScatterElements %s %s: %v", dt.Short(), red, err)
				}
				if got := out[0].Data().([]T); !slices.Equal(got, want) {
					t.Fatalf("ScatterElements %s %s data %v indices %v %v axis %d, %d threads:\n got %v\nwant %v", dt.Short(), red, xs, es, eidx, ax, threads, got, want)
				}
			}
		}
	}
}

// TestScatterReductionsTyped: every reduction in float32, int32 and int64
// (and uint8, which wraps) equals the reference in the type's own
// arithmetic, duplicates applied in index order.
func TestScatterReductionsTyped(t *testing.T) {
	defer parallel.ForceSplit(0)
	checkScatterTyped[float32](t, graph.Float, 1)
	checkScatterTyped[int32](t, graph.Int32, 2)
	checkScatterTyped[int64](t, graph.Int64, 3)
	checkScatterTyped[uint8](t, graph.Uint8, 4)
}

// TestScatterFloat32Duplicates: duplicate indices add in float32, one
// update at a time (1 + 2^-24 is 1, twice; the float64 form summed in
// float64 and rounded once, to 1 + 2^-23), and with no reduction the last
// one wins.
func TestScatterFloat32Duplicates(t *testing.T) {
	x := graph.Float32Tensor([]int{2}, []float32{1, 5})
	idx := graph.Int64Tensor([]int{3, 1}, []int64{0, -2, 0})
	upd := graph.Float32Tensor([]int{3}, []float32{0x1p-24, 0x1p-24, 0})
	got := runOp(t, "ScatterND", reductionAttr("add"), x, idx, upd)[0].Float32s()
	if got[0] != 1 || got[1] != 5 {
		t.Errorf("add: %v, want [1 5]", got)
	}
	got = runOp(t, "ScatterND", nil, x, idx, upd)[0].Float32s()
	if got[0] != 0 || got[1] != 5 {
		t.Errorf("none: %v, want [0 5] (the last update wins)", got)
	}
	got = runOp(t, "ScatterElements", reductionAttr("add"), x, graph.Int64Tensor([]int{3}, []int64{0, -2, 0}), upd)[0].Float32s()
	if got[0] != 1 || got[1] != 5 {
		t.Errorf("ScatterElements add: %v, want [1 5]", got)
	}
	got = runOp(t, "ScatterElements", nil, x, graph.Int64Tensor([]int{3}, []int64{1, 0, 1}), upd)[0].Float32s()
	if got[0] != 0x1p-24 || got[1] != 0 {
		t.Errorf("ScatterElements none: %v, want [2^-24 0] (the last update wins)", got)
	}
}

// TestScatterOtherTypes: bool reductions are or (add, max) and and (mul,
// min); float16 adds in float32 rounded once; strings scatter without a
// reduction and refuse one.
func TestScatterOtherTypes(t *testing.T) {
	bx := tensorOf(t, graph.Bool, []int{4}, []bool{false, true, false, true})
	bi := graph.Int64Tensor([]int{4, 1}, []int64{0, 1, 2, 3})
	bu := tensorOf(t, graph.Bool, []int{4}, []bool{false, false, true, true})
	for red, want := range map[string][]bool{
		"none": {false, false, true, true}, "add": {false, true, true, true}, "max": {false, true, true, true},
		"mul": {false, false, false, true}, "min": {false, false, false, true},
	} {
		got := runOp(t, "ScatterND", reductionAttr(red), bx, bi, bu)[0].Data().([]bool)
		if !slices.Equal(got, want) {
			t.Errorf("bool %s: %v, want %v", red, got, want)
		}
	}
	h := []graph.Float16Bits{graph.ToFloat16(1), graph.ToFloat16(2048)}
	hu := []graph.Float16Bits{graph.ToFloat16(0.3), graph.ToFloat16(1)}
	ht, ut := tensorOf(t, graph.Float16, []int{2}, slices.Clone(h)), tensorOf(t, graph.Float16, []int{2}, hu)
	// In a session a half graph may run widened to float32: the kernel's
	// own float16 path directly, then the op.
	sc, err := scattererOf(ht, ut, reduceAdd)
	if err != nil {
		t.Fatal(err)
	}
	sc.block(0, 0, 2)
	got := runOp(t, "ScatterND", reductionAttr("add"), tensorOf(t, graph.Float16, []int{2}, h),
		graph.Int64Tensor([]int{2, 1}, []int64{0, 1}), ut)[0]
	for i, g := range [][]graph.Float16Bits{ht.Data().([]graph.Float16Bits), got.Data().([]graph.Float16Bits)} {
		for j := range g {
			if want := graph.ToFloat16(h[j].Float32() + hu[j].Float32()); g[j] != want {
				t.Errorf("float16 add (%s) [%d]: %v, want %v", []string{"kernel", "op"}[i], j, g[j].Float32(), want.Float32())
			}
		}
	}
	s := tensorOf(t, graph.String, []int{3}, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	su := tensorOf(t, graph.String, []int{1}, [][]byte{[]byte("z")})
	gs := runOp(t, "ScatterND", nil, s, graph.Int64Tensor([]int{1, 1}, []int64{-2}), su)[0].Data().([][]byte)
	if fmt.Sprintf("%s", gs) != "[a z c]" {
		t.Errorf("strings: %s, want [a z c]", gs)
	}
	gs = runOp(t, "ScatterElements", nil, s, graph.Int64Tensor([]int{1}, []int64{2}), su)[0].Data().([][]byte)
	if fmt.Sprintf("%s", gs) != "[a b z]" {
		t.Errorf("ScatterElements strings: %s, want [a b z]", gs)
	}
	_, err = runOpThreads(1, "ScatterND", reductionAttr("add"), s, graph.Int64Tensor([]int{1, 1}, []int64{0}), su)
	moWantErr(t, "string add", err, "reduction", "string")
}

// TestGatherNDTyped: GatherND with batch_dims 0 and 1, negative indices,
// int32 and int64 indices, against element-by-element reads.
func TestGatherNDTyped(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for trial := 0; trial < 40; trial++ {
		rank := 2 + r.IntN(3)
		xs := make([]int, rank)
		for d := range xs {
			xs[d] = 1 + r.IntN(5)
		}
		x := make([]int64, graph.Numel(xs))
		for i := range x {
			x[i] = int64(i)<<40 + 1
		}
		batch := trial % 2
		last := 1 + r.IntN(rank-batch)
		tuples := 1 + r.IntN(4)
		is := append(slices.Clone(xs[:batch]), tuples, last)
		idx := make([]int64, graph.Numel(is))
		for i := range idx {
			d := xs[batch+i%last]
			idx[i] = int64(r.IntN(2*d) - d)
		}
		i32 := make([]int32, len(idx))
		for i, v := range idx {
			i32[i] = int32(v)
		}
		attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("batch_dims", int64(batch))}
		slice := graph.Numel(xs[batch+last:])
		var want []int64
		for b := 0; b < graph.Numel(xs[:batch]); b++ {
			for tu := 0; tu < tuples; tu++ {
				at := b
				for k := 0; k < last; k++ {
					c := int(idx[(b*tuples+tu)*last+k])
					if c < 0 {
						c += xs[batch+k]
					}
					at = at*xs[batch+k] + c
				}
				want = append(want, x[at*slice:(at+1)*slice]...)
			}
		}
		for _, it := range []*graph.Tensor{graph.Int64Tensor(is, idx), tensorOf(t, graph.Int32, is, i32)} {
			out, err := runOpThreads(1, "GatherND", attrs, graph.Int64Tensor(xs, x), it)
			if err != nil {
				t.Fatal(err)
			}
			wantShape := append(slices.Clone(is[:len(is)-1]), xs[batch+last:]...)
			if got := out[0]; !slices.Equal(got.Shape, wantShape) || !slices.Equal(got.Int64s(), want) {
				t.Fatalf("data %v indices %v %v batch %d: %v %v, want %v %v", xs, is, idx, batch, got.Shape, got.Int64s(), wantShape, want)
			}
		}
	}
}

// TestScatterGatherErrors: indices out of range and mismatched shapes are
// errors, not panics.
func TestScatterGatherErrors(t *testing.T) {
	x := graph.Float32Tensor([]int{3, 4}, make([]float32, 12))
	row := graph.Float32Tensor([]int{1, 4}, make([]float32, 4))
	axis1 := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}
	for _, c := range []struct {
		what, op string
		attrs    []*onnxpb.AttributeProto
		in       []*graph.Tensor
		want     []string
	}{
		{"ScatterND index 3", "ScatterND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 1}, []int64{3}), row}, []string{"index 3 is out of range"}},
		{"ScatterND index -4", "ScatterND", reductionAttr("add"), []*graph.Tensor{x, graph.Int64Tensor([]int{1, 1}, []int64{-4}), row}, []string{"index -4 is out of range"}},
		{"ScatterND updates", "ScatterND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{2, 1}, []int64{0, 1}), row}, []string{"updates have 4 values, want 8"}},
		{"ScatterND depth", "ScatterND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 3}, []int64{0, 0, 0}), row}, []string{"depth 3"}},
		{"ScatterND scalar indices", "ScatterND", nil, []*graph.Tensor{x, graph.Int64Tensor(nil, []int64{0}), row}, []string{"rank >= 1"}},
		{"ScatterND update type", "ScatterND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 1}, []int64{0}), graph.Int64Tensor([]int{1, 4}, make([]int64, 4))}, []string{"updates are int64"}},
		{"ScatterND float indices", "ScatterND", nil, []*graph.Tensor{x, graph.Float32Tensor([]int{1, 1}, []float32{0}), row}, []string{"int64"}},
		{"ScatterElements index 4", "ScatterElements", axis1, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 1}, []int64{4}), graph.Float32Tensor([]int{1, 1}, []float32{1})}, []string{"index 4 is out of range"}},
		{"ScatterElements index -5", "ScatterElements", axis1, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 1}, []int64{-5}), graph.Float32Tensor([]int{1, 1}, []float32{1})}, []string{"index -5 is out of range"}},
		{"ScatterElements shapes", "ScatterElements", axis1, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 2}, []int64{0, 1}), graph.Float32Tensor([]int{2, 1}, []float32{1, 2})}, []string{"must match"}},
		{"ScatterElements wider indices", "ScatterElements", axis1, []*graph.Tensor{x, graph.Int64Tensor([]int{4, 1}, make([]int64, 4)), graph.Float32Tensor([]int{4, 1}, make([]float32, 4))}, []string{"exceed data"}},
		{"GatherND index 3", "GatherND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 2}, []int64{3, 0})}, []string{"index 3 is out of range"}},
		{"GatherND index -5", "GatherND", nil, []*graph.Tensor{x, graph.Int64Tensor([]int{1, 2}, []int64{0, -5})}, []string{"index -5 is out of range"}},
		{"GatherND batch", "GatherND", []*onnxpb.AttributeProto{graph.AttrIntOf("batch_dims", 1)}, []*graph.Tensor{x, graph.Int64Tensor([]int{2, 1}, []int64{0, 0})}, []string{"differ"}},
		{"GatherND batch_dims", "GatherND", []*onnxpb.AttributeProto{graph.AttrIntOf("batch_dims", 2)}, []*graph.Tensor{x, graph.Int64Tensor([]int{3, 1}, []int64{0, 0, 0})}, []string{"batch_dims 2"}},
	} {
		_, err := runOpThreads(1, c.op, c.attrs, c.in...)
		moWantErr(t, c.what, err, c.want...)
	}
}

// TestScatterNDThreads: the copy of a large data tensor split between two
// threads gives what one thread does.
func TestScatterNDThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	xs := []int{300, 256}
	x := randomValues[float32](r, graph.Numel(xs))
	idx := graph.Int64Tensor([]int{2, 1}, []int64{100, -1})
	upd := graph.Float32Tensor([]int{2, 256}, randomValues[float32](r, 512))
	want := scatterNDRef(x, xs, idx.Int64s(), idx.Shape, upd.Float32s(), "none")
	for _, threads := range []int{1, 2} {
		out, err := runOpThreads(threads, "ScatterND", nil, graph.Float32Tensor(xs, x), idx, upd)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].Float32s(), want) {
			t.Fatalf("%d threads differ from the reference", threads)
		}
	}
}

// TestOneHotTyped: the output keeps the values' type, int64 beyond 2^53
// exactly; negative indices count from depth, out-of-range ones stay off;
// a depth below 1 is an error.
func TestOneHotTyped(t *testing.T) {
	off, on := int64(math.MinInt64+1), int64(1<<62+1)
	idx := graph.Int64Tensor([]int{3}, []int64{1, -1, 5})
	got := runOp(t, "OneHot", nil, idx, graph.Int64Tensor(nil, []int64{3}), graph.Int64Tensor([]int{2}, []int64{off, on}))[0]
	want := []int64{off, on, off, off, off, on, off, off, off}
	if !slices.Equal(got.Shape, []int{3, 3}) || !slices.Equal(got.Int64s(), want) {
		t.Errorf("OneHot int64: %v %v, want [3 3] %v", got.Shape, got.Int64s(), want)
	}
	s := tensorOf(t, graph.String, []int{2}, [][]byte{[]byte("no"), []byte("yes")})
	gs := runOp(t, "OneHot", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, graph.Int64Tensor([]int{2}, []int64{0, 1}), graph.Float32Tensor(nil, []float32{2}), s)[0]
	if fmt.Sprintf("%s", gs.Data()) != "[yes no no yes]" {
		t.Errorf("OneHot strings: %s, want [yes no no yes]", gs.Data())
	}
	_, err := runOpThreads(1, "OneHot", nil, idx, graph.Int64Tensor(nil, []int64{-2}), graph.Int64Tensor([]int{2}, []int64{0, 1}))
	moWantErr(t, "OneHot depth -2", err, "depth -2")
}
