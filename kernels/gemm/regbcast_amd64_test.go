//go:build amd64 && !purego

package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestRegBroadcastSameBits runs each AVX-512 tile kernel and its
// register-broadcast twin (the one regBroadcast picks on AMD) on the same
// operands, in every accumulate mode, with and without a bias, over every
// row count of a tile column: the outputs must agree bit for bit, so the
// CPU's vendor never changes a result.
func TestRegBroadcastSameBits(t *testing.T) {
	if !cpu.X86.HasAVX512F {
		t.Skip("no AVX-512")
	}
	r := rand.New(rand.NewPCG(7, 9))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	const kc, ldc = 37, 40
	modes := []accMode{accOverwrite, accAdd, accChain, accOverwrite | accRelu, accAdd | accRelu}
	same := func(name string, want, got []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("%s: element %d: %v (embedded broadcast) vs %v (register broadcast)", name, i, want[i], got[i])
			}
		}
	}
	plain := [][2]func(kc int, a, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32){
		{kernelAVX512Tiles, kernelAVX512TilesBR},
	}
	for _, p := range plain {
		for rows := 1; rows <= 25; rows += 3 {
			a, b, c0 := fill(kc*12*((rows+11)/12)), fill(kc*48), fill(rows*ldc)
			for _, m := range modes {
				for _, bias := range [][]float32{nil, fill(rows)} {
					emb, br := tileColumn(12, 32, p[0]), tileColumn(12, 32, p[1])
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					emb(kc, a, b, 48, want, ldc, m, rows, bias)
					br(kc, a, b, 48, got, ldc, m, rows, bias)
					same("kernelAVX512Tiles", want, got)
				}
			}
		}
	}
	offs := []struct {
		name    string
		mr      int
		contig  bool
		emb, br func(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2, d3 int, acc accMode, rows int, bias *float32)
	}{
		{"kernelAVX512OffsTiles", 12, false, kernelAVX512OffsTiles, kernelAVX512OffsTilesBR},
		{"kernelAVX512Offs8Tiles", 8, false, kernelAVX512Offs8Tiles, kernelAVX512Offs8TilesBR},
		{"kernelAVX512OffsTilesC", 12, true, kernelAVX512OffsTilesC, kernelAVX512OffsTilesCBR},
		{"kernelAVX512Offs8TilesC", 8, true, kernelAVX512Offs8TilesC, kernelAVX512Offs8TilesCBR},
	}
	for _, o := range offs {
		ds := []int{0, 40, 97, 150}
		if o.contig {
			ds = []int{0, 8, 16, 24}
		}
		b := fill(kc*7 + 200)
		off := make([]int, kc)
		for p := range off {
			off[p] = r.IntN(kc * 6)
		}
		for rows := 1; rows <= 2*o.mr+1; rows += 2 {
			a, c0 := fill(kc*o.mr*((rows+o.mr-1)/o.mr)), fill(rows*ldc)
			for _, m := range modes {
				for _, bias := range [][]float32{nil, fill(rows)} {
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					offs32(o.mr, o.emb)(kc, a, b, off, ds, want, ldc, m, rows, bias)
					offs32(o.mr, o.br)(kc, a, b, off, ds, got, ldc, m, rows, bias)
					same(o.name, want, got)
				}
			}
		}
	}
}
