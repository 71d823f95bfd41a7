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
	// The kernels that read A in place (rows whole tiles, A's rows lda
	// apart), both forms, against the packed kernel on A packed.
	for _, rows := range []int{12, 24, 36} {
		const lda = kc + 5
		am, b, c0 := fill(rows*lda), fill(kc*48), fill(rows*ldc)
		packed := make([]float32, kc*rows)
		packA(packed, Matrix{Data: am, Stride: lda}, 1, 0, rows, 0, kc, 12)
		for _, m := range modes {
			for _, bias := range [][]float32{nil, fill(rows)} {
				want := append([]float32(nil), c0...)
				tileColumn(12, 32, kernelAVX512TilesBR)(kc, packed, b, 48, want, ldc, m, rows, bias)
				for _, k := range []func(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32){kernelAVX512TilesA, kernelAVX512TilesABR} {
					got := append([]float32(nil), c0...)
					tileColumnA(12, 32, k)(kc, am, lda, b, 48, got, ldc, m, rows, bias)
					same("kernelAVX512TilesA", want, got)
				}
			}
		}
	}
	// The packed-panel kernels: plain (ldb 32), strided and the 16-wide half.
	for _, acc := range []bool{false, true} {
		a, b, c0 := fill(kc*12), fill(kc*48), fill(12*ldc)
		want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
		kernelAVX512(kc, &a[0], &b[0], &want[0], ldc, acc)
		kernelAVX512BR(kc, &a[0], &b[0], &got[0], ldc, acc)
		same("kernelAVX512", want, got)
		copy(want, c0)
		copy(got, c0)
		kernelAVX512Strided(kc, &a[0], &b[0], &want[0], ldc, 48, acc)
		kernelAVX512StridedBR(kc, &a[0], &b[0], &got[0], ldc, 48, acc)
		same("kernelAVX512Strided", want, got)
		copy(want, c0)
		copy(got, c0)
		kernelAVX512Half(kc, &a[0], &b[0], &want[0], ldc, 48, acc)
		kernelAVX512HalfBR(kc, &a[0], &b[0], &got[0], ldc, 48, acc)
		same("kernelAVX512Half", want, got)
	}
	// The co-tiles, every pixel count, first/last k blocks, with and without a bias.
	for px := 1; px <= 14; px++ {
		const k, plane = 19, 20
		w, x, bias := fill(k*32), fill(600), fill(32)
		off := make([]int, k)
		for i := range off {
			off[i] = r.IntN(500)
		}
		for _, fl := range [][2]bool{{true, true}, {true, false}, {false, true}, {false, false}} {
			for _, b := range [][]float32{nil, bias} {
				tile0, out0 := fill(CoTileFloats), fill(32*plane)
				tw, ow := append([]float32(nil), tile0...), append([]float32(nil), out0...)
				tg, og := append([]float32(nil), tile0...), append([]float32(nil), out0...)
				var bp *float32
				if b != nil {
					bp = &b[0]
				}
				masks := 0x5ffff3ff
				coTile(px, k, &w[0], &x[0], &off[0], &tw[0], bp, fl[0], fl[1], &ow[0], plane, masks)
				coTileBR(px, k, &w[0], &x[0], &off[0], &tg[0], bp, fl[0], fl[1], &og[0], plane, masks)
				same("coTile tile", tw, tg)
				same("coTile out", ow, og)
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
