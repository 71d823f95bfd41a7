package kernels

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// nbitsCase describes one MatMulNBits node and its constant inputs.
type nbitsCase struct {
	k, n, bits, block int
	zp                string // "", "packed" or "float"
	scales2D, bias    bool
}

// nbitsModel builds a model with one MatMulNBits node on input A [rows, K]
// (seeded packed weights, scales, zero points and bias as initializers) and
// returns it with the weights it must compute with, dequantized by hand from
// the spec: w[n][k] = (q - zp) * scale, packed low bits first.
func nbitsModel(c nbitsCase, lead []int, seed uint64) (*graph.Model, []float32) {
	r := rand.New(rand.NewPCG(seed, 11))
	kBlocks := (c.k + c.block - 1) / c.block
	blob := c.block * c.bits / 8
	b := make([]uint8, c.n*kBlocks*blob)
	for i := range b {
		b[i] = uint8(r.IntN(256))
	}
	scales := make([]float32, c.n*kBlocks)
	for i := range scales {
		scales[i] = float32(0.01 + 0.05*r.Float64())
	}
	levels := 1 << c.bits
	zps := make([]float32, c.n*kBlocks)
	perCol := (kBlocks*c.bits + 7) / 8
	packed := make([]uint8, c.n*perCol)
	for n := 0; n < c.n; n++ {
		for blk := 0; blk < kBlocks; blk++ {
			z := levels / 2
			if c.zp != "" {
				z = r.IntN(levels)
			}
			zps[n*kBlocks+blk] = float32(z)
			if c.bits == 8 {
				packed[n*perCol+blk] = uint8(z)
			} else {
				packed[n*perCol+blk/2] |= uint8(z) << (4 * (blk % 2))
			}
		}
	}
	w := make([]float32, c.n*c.k)
	for n := 0; n < c.n; n++ {
		for kk := 0; kk < c.k; kk++ {
			blk, i := kk/c.block, kk%c.block
			off := (n*kBlocks + blk) * blob
			var q uint8
			if c.bits == 8 {
				q = b[off+i]
			} else if i%2 == 0 {
				q = b[off+i/2] & 0xF
			} else {
				q = b[off+i/2] >> 4
			}
			w[n*c.k+kk] = (float32(q) - zps[n*kBlocks+blk]) * scales[n*kBlocks+blk]
		}
	}
	m := graph.NewModel(graph.Opset{Version: 17}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	var aDims, yDims []int64
	for _, d := range lead {
		aDims, yDims = append(aDims, int64(d)), append(yDims, int64(d))
	}
	a := g.AddInput("A", graph.Float, append(aDims, int64(c.k)))
	bt, _ := graph.TensorOf(graph.Uint8, []int{c.n, kBlocks, blob}, b)
	sShape := []int{c.n * kBlocks}
	if c.scales2D {
		sShape = []int{c.n, kBlocks}
	}
	ins := []*graph.Value{a, g.AddInitializer("B", bt), g.AddInitializer("scales", graph.Float32Tensor(sShape, scales))}
	switch c.zp {
	case "packed":
		zt, _ := graph.TensorOf(graph.Uint8, []int{c.n * perCol}, packed)
		ins = append(ins, g.AddInitializer("zero_points", zt))
	case "float":
		ins = append(ins, g.AddInitializer("zero_points", graph.Float32Tensor(sShape, zps)))
	}
	if c.bias {
		bias := make([]float32, c.n)
		for i := range bias {
			bias[i] = float32(r.NormFloat64())
		}
		for len(ins) < 5 {
			ins = append(ins, nil)
		}
		ins = append(ins, g.AddInitializer("bias", graph.Float32Tensor([]int{c.n}, bias)))
	}
	nd := g.AddNode("MatMulNBits", "mmnb", ins, []string{"Y"},
		graph.AttrIntOf("K", int64(c.k)), graph.AttrIntOf("N", int64(c.n)),
		graph.AttrIntOf("bits", int64(c.bits)), graph.AttrIntOf("block_size", int64(c.block)))
	nd.Domain = "com.microsoft"
	nd.Output().SetTensorType(graph.Float, append(yDims, int64(c.n)))
	g.AddOutput(nd.Output())
	return m, w
}

// TestMatMulNBitsDequantizes: onnxq's kernel computes A x W^T with W
// dequantized by hand from the packed blobs, per bit width, zero point form,
// and a K that leaves the last block padded.
func TestMatMulNBitsDequantizes(t *testing.T) {
	for _, c := range []nbitsCase{
		{k: 64, n: 8, bits: 4, block: 32},
		{k: 72, n: 5, bits: 4, block: 32, zp: "packed", scales2D: true},
		{k: 72, n: 5, bits: 4, block: 16, zp: "float"},
		{k: 40, n: 3, bits: 8, block: 16, zp: "packed"},
		{k: 64, n: 4, bits: 8, block: 64, bias: true},
	} {
		const rows = 3
		m, w := nbitsModel(c, []int{rows}, 5)
		s, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		a := seededFloats(rows*c.k, 9)
		out, err := s.Run(map[string]*graph.Tensor{"A": graph.Float32Tensor([]int{rows, c.k}, a)})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		y := out["Y"].Float32s()
		// The same with the scales given at run time (B dequantized per run).
		sv := m.Graph.Value("scales")
		scales := sv.Const
		m.Graph.RemoveInitializer(sv)
		m.Graph.AddInput("scales", graph.Float, nil)
		s2, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		out2, err := s2.Run(map[string]*graph.Tensor{"A": graph.Float32Tensor([]int{rows, c.k}, a), "scales": scales})
		if err != nil {
			t.Fatalf("%+v: scales as input: %v", c, err)
		}
		for i, v := range out2["Y"].Float32s() {
			if v != y[i] {
				t.Fatalf("%+v: scales as input: Y[%d] = %v, with constant scales %v", c, i, v, y[i])
			}
		}
		var bias []float32
		if c.bias {
			bias = m.Graph.Value("bias").Const.Float32s()
		}
		for i := 0; i < rows; i++ {
			for n := 0; n < c.n; n++ {
				var want float64
				for kk := 0; kk < c.k; kk++ {
					want += float64(a[i*c.k+kk]) * float64(w[n*c.k+kk])
				}
				if bias != nil {
					want += float64(bias[n])
				}
				if d := float64(y[i*c.n+n]) - want; d > 1e-4 || d < -1e-4 {
					t.Fatalf("%+v: Y[%d][%d] = %v, want %v", c, i, n, y[i*c.n+n], want)
				}
			}
		}
	}
}

func seededFloats(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// TestMatMulNBitsBadInput: malformed nodes are one-line errors at compile time.
func TestMatMulNBitsBadInput(t *testing.T) {
	for _, c := range []struct {
		edit func(m *graph.Model)
		want string
	}{
		{func(m *graph.Model) { m.Graph.Nodes[0].SetAttr(graph.AttrIntOf("block_size", 24)) }, "block_size 24 must be a power of two"},
		{func(m *graph.Model) { m.Graph.Nodes[0].SetAttr(graph.AttrIntOf("bits", 3)) }, "bits 3 is not supported"},
		{func(m *graph.Model) { m.Graph.Nodes[0].DelAttr("K") }, "attribute K is required"},
		{func(m *graph.Model) { m.Graph.Nodes[0].SetAttr(graph.AttrIntOf("N", 7)) }, "B is uint8 [8 2 16], want uint8 [7, 2, 16]"},
		{func(m *graph.Model) {
			m.Graph.Value("scales").Const = graph.Float32Tensor([]int{3}, []float32{1, 2, 3})
		}, "scales are float32 [3], want float32 [16] or [8, 2]"},
	} {
		m, _ := nbitsModel(nbitsCase{k: 64, n: 8, bits: 4, block: 32}, []int{2}, 1)
		c.edit(m)
		_, err := NewSession(m, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
