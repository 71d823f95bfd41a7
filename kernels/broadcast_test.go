package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestBroadcastWithMatchesDefinition: Expand's broadcast (the repeater's
// doubling copies along broadcast axes, then copies of the run doubled to
// repeatRun) against the element-wise definition on 400 random shapes of
// rank 0-5, each input axis 1 or the output's, and on shapes whose runs
// pass repeatRun with blocks left over (an attention mask's, a block of
// 1000 repeated 7 times, of 333 repeated 40 times), in float32 and int64,
// on 1 and 2 threads; and Tile against its definition.
func TestBroadcastWithMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	fixed := [][2][]int{{{1, 1, 1, 197}, {1, 12, 197, 197}}, {{1, 1000}, {7, 1000}}, {{333}, {4, 10, 333}}, {{3, 1, 5}, {3, 700, 5}}}
	for trial := 0; trial < 400+len(fixed); trial++ {
		rank := r.IntN(6)
		out, in := make([]int, rank), make([]int, rank)
		for d := range out {
			out[d] = 1 + r.IntN(6)
			in[d] = out[d]
			if r.IntN(2) == 0 {
				in[d] = 1
			}
		}
		in = in[r.IntN(rank+1):] // fewer leading axes: numpy broadcasting
		if trial >= 400 {
			in, out = fixed[trial-400][0], fixed[trial-400][1]
			rank = len(out)
		}
		xf := make([]float32, graph.Numel(in))
		xi := make([]int64, len(xf))
		for i := range xf {
			xf[i], xi[i] = float32(i)+0.5, int64(i)*3
		}
		for _, threads := range []int{1, 2} {
			ctx := &Context{Threads: threads, pool: newBufferPool()}
			gf := broadcastWith(ctx, graph.Float32Tensor(in, xf), out).Float32s()
			gi := broadcastWith(ctx, graph.Int64Tensor(in, xi), out).Int64s()
			c := make([]int, rank)
			for o := range gf {
				for d, rem := rank-1, o; d >= 0; d-- {
					c[d], rem = rem%out[d], rem/out[d]
				}
				idx, off := 0, rank-len(in)
				for d, n := range in {
					idx = idx*n + c[off+d]%n
				}
				if gf[o] != xf[idx] || gi[o] != xi[idx] {
					t.Fatalf("%v -> %v, %d threads: [%v] = %v, %v; want %v, %v", in, out, threads, c, gf[o], gi[o], xf[idx], xi[idx])
				}
			}
		}
	}
	for trial := 0; trial < 100; trial++ {
		rank := 1 + r.IntN(4)
		shape, reps := make([]int, rank), make([]int64, rank)
		for d := range shape {
			shape[d], reps[d] = 1+r.IntN(5), int64(r.IntN(4))
		}
		x := make([]float32, graph.Numel(shape))
		for i := range x {
			x[i] = float32(i)
		}
		got := runOp(t, "Tile", nil, graph.Float32Tensor(shape, x), graph.Int64Tensor([]int{rank}, reps))[0]
		want := make([]int, rank)
		for d := range want {
			want[d] = shape[d] * int(reps[d])
		}
		if fmt.Sprint(got.Shape) != fmt.Sprint(want) {
			t.Fatalf("Tile %v by %v: shape %v, want %v", shape, reps, got.Shape, want)
		}
		c := make([]int, rank)
		for o, v := range got.Float32s() {
			for d, rem := rank-1, o; d >= 0; d-- {
				c[d], rem = rem%want[d], rem/want[d]
			}
			idx := 0
			for d, n := range shape {
				idx = idx*n + c[d]%n
			}
			if v != x[idx] {
				t.Fatalf("Tile %v by %v: [%v] = %v, want %v", shape, reps, c, v, x[idx])
			}
		}
	}
}

// TestConcatMatchesDefinition: Concat of 1-4 inputs along every axis of
// random shapes (rank 1-4, short and long rows), against the element-wise
// definition, at 1 and 2 threads.
func TestConcatMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for trial := 0; trial < 300; trial++ {
		rank := 1 + r.IntN(4)
		ax := r.IntN(rank)
		shape := make([]int, rank)
		for d := range shape {
			shape[d] = 1 + r.IntN(5)
		}
		if r.IntN(4) == 0 {
			shape[rank-1] = 1000 + r.IntN(100) // rows long enough for the per-row copies
		}
		k := 1 + r.IntN(4)
		var ins []*graph.Tensor
		var lens []int
		for i := 0; i < k; i++ {
			s := append([]int(nil), shape...)
			s[ax] = 1 + r.IntN(4)
			x := make([]float32, graph.Numel(s))
			for j := range x {
				x[j] = float32(i*100000 + j)
			}
			in := graph.Float32Tensor(s, x)
			switch trial % 3 { // the small path copies bytes: other widths too
			case 1:
				in = graph.NewTensor(graph.Int64, s)
				for j := range x {
					in.Int64s()[j] = int64(x[j])
				}
			case 2:
				in = graph.NewTensor(graph.Uint8, s)
				for j := range x {
					in.Data().([]uint8)[j] = uint8(int(x[j]) % 251)
				}
			}
			ins, lens = append(ins, in), append(lens, s[ax])
		}
		for _, threads := range []int{1, 2} {
			out, err := runOpThreads(threads, "Concat", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(ax))}, ins...)
			if err != nil {
				t.Fatal(err)
			}
			got := out[0]
			c := make([]int, rank)
			for o := range got.Len() {
				v := elemAt(got, o)
				for d, rem := rank-1, o; d >= 0; d-- {
					c[d], rem = rem%got.Shape[d], rem/got.Shape[d]
				}
				i, at := 0, c[ax]
				for at >= lens[i] {
					at -= lens[i]
					i++
				}
				idx := 0
				for d, n := range ins[i].Shape {
					p := c[d]
					if d == ax {
						p = at
					}
					idx = idx*n + p
				}
				if want := elemAt(ins[i], idx); v != want {
					t.Fatalf("Concat axis %d of %d inputs like %v, %d threads: [%v] = %v, want %v", ax, k, shape, threads, c, v, want)
				}
			}
		}
	}
}

// elemAt is element i of a float32, int64 or uint8 tensor, as a float64.
func elemAt(t *graph.Tensor, i int) float64 {
	switch d := t.Data().(type) {
	case []float32:
		return float64(d[i])
	case []int64:
		return float64(d[i])
	case []uint8:
		return float64(d[i])
	}
	panic(fmt.Sprintf("elemAt: %T", t.Data()))
}
