package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/igemm"
)

// intRef is MatMulInteger by the definition, in int64: A's zero point per
// tensor or per row (A's second-to-last axis), B's per tensor or per column.
func intRef(a, azp, b, bzp *graph.Tensor) ([]int32, []int) {
	batch, m, k, n, shape, err := matmulShapes(a.Shape, b.Shape, make([]int, 16))
	if err != nil {
		panic(err)
	}
	av, bv := readInt64s(a), readInt64s(b)
	zpAt := func(z *graph.Tensor, i int) int64 {
		if z == nil {
			return 0
		}
		zs := readInt64s(z)
		if len(zs) == 1 {
			return zs[0]
		}
		return zs[i]
	}
	a2, b2 := a.Shape, b.Shape
	if len(a2) == 1 {
		a2 = []int{1, a2[0]}
	}
	if len(b2) == 1 {
		b2 = []int{b2[0], 1}
	}
	aStr, bStr := bcastStrides(a2[:len(a2)-2], batch), bcastStrides(b2[:len(b2)-2], batch)
	out := make([]int32, graph.Numel(batch)*m*n)
	idx := make([]int, len(batch))
	for bi := range graph.Numel(batch) {
		ao, bo := 0, 0
		for d := range batch {
			ao += idx[d] * aStr[d]
			bo += idx[d] * bStr[d]
		}
		for i := range m {
			for j := range n {
				var s int64
				for p := range k {
					s += (av[(ao*m+i)*k+p] - zpAt(azp, i)) * (bv[(bo*k+p)*n+j] - zpAt(bzp, j))
				}
				out[(bi*m+i)*n+j] = int32(s)
			}
		}
		for d := len(batch) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < batch[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, shape
}

// int8Tensor is a uint8 or int8 tensor of shape; fill gives each value.
func int8Tensor(signed bool, shape []int, fill func(i int) int) *graph.Tensor {
	n := graph.Numel(shape)
	if signed {
		d := make([]int8, n)
		for i := range d {
			d[i] = int8(fill(i))
		}
		t, _ := graph.TensorOf(graph.Int8, shape, d)
		return t
	}
	d := make([]uint8, n)
	for i := range d {
		d[i] = uint8(fill(i))
	}
	t, _ := graph.TensorOf(graph.Uint8, shape, d)
	return t
}

// TestMatMulIntegerExact: MatMulInteger on the float GEMM gives the int32
// product bit for bit, with B a constant (packed once) and fed at run time,
// at 1 and 2 threads: K across the chunk boundaries (256, 257, 768), the
// extremes (centered values of magnitude 253-255, so each chunk's float
// sum is at its largest), zero points per tensor, per row and per column,
// the largest typical codes (magnitudes 128 x 127, chunks of 1032) past
// the chunk, mixed signedness, batch broadcasting and 1-D operands. Chunks
// 1% longer than intChunkFor's fail it.
func TestMatMulIntegerExact(t *testing.T) {
	defer func(v bool) { useIgemm = v }(useIgemm)
	rng := rand.New(rand.NewPCG(3, 5))
	type tc struct {
		as, bs           []int
		aSigned, bSigned bool
		extreme          bool
		typical          bool // extreme for typical codes: uint8 about 128, int8 within 127
		rowZP, colZP     bool
	}
	var cases []tc
	for _, k := range []int{1, 7, 255, 256, 257, 600, 768, 1100} {
		cases = append(cases,
			tc{as: []int{5, k}, bs: []int{k, 9}},
			tc{as: []int{3, k}, bs: []int{k, 17}, aSigned: true, bSigned: true, extreme: true},
			tc{as: []int{4, k}, bs: []int{k, 6}, bSigned: true, extreme: true, rowZP: true, colZP: true},
		)
	}
	for _, k := range []int{1031, 1033, 1100, 2100} {
		cases = append(cases, tc{as: []int{3, k}, bs: []int{k, 5}, bSigned: true, extreme: true, typical: true})
	}
	cases = append(cases,
		tc{as: []int{2, 1, 3, 300}, bs: []int{3, 300, 5}, bSigned: true},
		tc{as: []int{300}, bs: []int{300, 4}},
		tc{as: []int{4, 300}, bs: []int{300}, aSigned: true},
		tc{as: []int{1, 0}, bs: []int{0, 3}},
	)
	for ci, c := range cases {
		var a, b, azp, bzp *graph.Tensor
		if c.extreme {
			// Centered values of magnitude 253 to 255 at random, one sign
			// per operand (uint8 253-255 less 0; int8 -128 to -126 less
			// 127): every product is one of the largest, with either
			// parity, so the chunks' float sums are at their largest and
			// a sum past 2^24 would round.
			m, n := c.as[len(c.as)-2], c.bs[len(c.bs)-1]
			fill := func(signed bool) func(int) int {
				return func(int) int {
					switch {
					case c.typical && signed: // 127 less 0, now and then 126
						return 127 - rng.IntN(8)/7
					case c.typical: // 0 less 128, now and then 1
						return rng.IntN(8) / 7
					case signed:
						return -128 + rng.IntN(3)
					}
					return 253 + rng.IntN(3)
				}
			}
			a = int8Tensor(c.aSigned, c.as, fill(c.aSigned))
			b = int8Tensor(c.bSigned, c.bs, fill(c.bSigned))
			az, bz := 0, 0
			switch {
			case c.typical:
				az = 128 // and bz 0: magnitudes 127-128 and 126-127, one chunk of 1032
			default:
				if c.aSigned {
					az = 127
				}
				if c.bSigned {
					bz = 127
				}
			}
			if c.rowZP {
				azp = int8Tensor(c.aSigned, []int{m}, func(int) int { return az })
			} else {
				azp = int8Tensor(c.aSigned, nil, func(int) int { return az })
			}
			if c.colZP {
				bzp = int8Tensor(c.bSigned, []int{n}, func(int) int { return bz })
			} else {
				bzp = int8Tensor(c.bSigned, nil, func(int) int { return bz })
			}
		} else {
			a = int8Tensor(c.aSigned, c.as, func(int) int { return rng.IntN(256) })
			b = int8Tensor(c.bSigned, c.bs, func(int) int { return rng.IntN(256) })
			azp = int8Tensor(c.aSigned, nil, func(int) int { return rng.IntN(256) })
			bzp = int8Tensor(c.bSigned, nil, func(int) int { return rng.IntN(256) })
		}
		want, shape := intRef(a, azp, b, bzp)
		for _, v := range intPaths() {
			for _, constB := range []bool{true, false} {
				for _, threads := range []int{1, 2} {
					useIgemm = v.igemm
					name := fmt.Sprintf("case %d %v x %v const B %v, %d threads, %s", ci, c.as, c.bs, constB, threads, v.name)
					md := graph.NewModel(graph.Opset{Version: 17})
					g := md.Graph
					av := g.AddInput("a", a.DType, nil)
					feeds := map[string]*graph.Tensor{"a": a}
					var bv *graph.Value
					if constB {
						bv = g.AddInitializer("b", b)
					} else {
						bv = g.AddInput("b", b.DType, nil)
						feeds["b"] = b
					}
					nd := g.AddNode("MatMulInteger", "mmi", []*graph.Value{av, bv, g.AddInitializer("azp", azp), g.AddInitializer("bzp", bzp)}, []string{"y"})
					g.AddOutput(nd.Output())
					s, err := NewSession(md, Options{Threads: threads})
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					for run := range 2 { // the second from the pool's buffers
						res, err := s.Run(feeds)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						y := res["y"]
						if y.DType != graph.Int32 || !slices.Equal(y.Shape, shape) {
							t.Fatalf("%s: %s %v, want int32 %v", name, y.DType.Short(), y.Shape, shape)
						}
						if got := graph.Elems[int32](y); !slices.Equal(got, want) {
							i := 0
							for got[i] == want[i] {
								i++
							}
							t.Fatalf("%s run %d: y[%d] = %d, want %d", name, run, i, got[i], want[i])
						}
						s.Recycle(res)
					}
				}
			}
		}
	}
}

// intPaths are the ways the integer products can run here: igemm's VNNI
// tiles when the CPU has them, and the float32 GEMM. The caller's last
// switch is undone by the test's cleanup.
func intPaths() []struct {
	name  string
	igemm bool
} {
	paths := []struct {
		name  string
		igemm bool
	}{{"float32 GEMM", false}}
	if igemm.Available() {
		paths = append(paths, struct {
			name  string
			igemm bool
		}{"VNNI", true})
	}
	return paths
}
