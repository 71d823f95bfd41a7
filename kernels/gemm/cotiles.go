package gemm

import "fmt"

// CoTile is a direct convolution with the output channels in the vector
// lanes (AVX-512): a tile of up to CoTileMax output pixels of one output
// row by 32 output channels, each input value broadcast and multiplied by
// the 32 channels' weights for its tap. The pixels of a tile are
// consecutive floats of the input (the convolution's padded phase planes,
// as for Grid), so any map width takes whole tiles, where the 32-pixel
// panels of the grid kernels compute a 28-wide row as 32 and a 7-wide one
// as 8, and nothing is copied into an im2col matrix or packed: the input is
// read where it lies and the weights once per tile from the packing.
//
// The sums are the GEMM tiles' (k blocks of kcBlock, each one FMA chain
// from zero over its taps in order, the first plus the bias, the later ones
// added), so a convolution gives the bits of its im2col and grid paths.

// CoTileMax is the most output pixels a CoTile computes at once, and
// CoTileFloats the floats of its scratch tile.
const (
	coTileMax    = 14
	CoTileMax    = coTileMax
	CoTileFloats = coTileMax * 32
)

// noHalfCoTiles runs a block of at most 16 channels on the 32-channel
// kernels, for the tests and benchmarks that compare.
var noHalfCoTiles = false

// HasCoTiles reports whether CoTile has kernels on this machine.
func HasCoTiles() bool { return haveCoTiles && active.nr == 32 }

// PackedCo is an M x K weight matrix packed for CoTile: blocks of 32 rows
// (output channels), each K x 32, tap by tap; rows past M are zero.
type PackedCo struct {
	M, K int
	data []float32
}

// PackCo packs A (m x k) for CoTile.
func PackCo(m, k int, a Matrix) *PackedCo {
	blocks := (m + 31) / 32
	p := &PackedCo{M: m, K: k, data: make([]float32, blocks*k*32)}
	for q := 0; q < blocks; q++ {
		d := p.data[q*k*32 : (q+1)*k*32]
		for j := 0; j < 32 && q*32+j < m; j++ {
			for t := 0; t < k; t++ {
				d[t*32+j] = a.at(q*32+j, t)
			}
		}
	}
	return p
}

// Blocks is how many blocks of 32 output channels p has.
func (p *PackedCo) Blocks() int { return (p.M + 31) / 32 }

// CoTile computes output channels [32q, min(32q+32, M)) at px consecutive
// pixels (1 to CoTileMax) of one output row: for channel j and pixel i,
//
//	out[at+j*plane+i] = bias[32q+j] + sum over taps t of W[32q+j, t] * x[base+offs[t]+i]
//
// (no bias when bias is nil). span is one past the largest of offs, for the
// bounds check; tile is scratch of CoTileFloats.
func CoTile(p *PackedCo, q, px int, x []float32, base int, offs []int, span int, bias []float32, out []float32, at, plane int, tile []float32) {
	k := p.K
	rows := min(32, p.M-32*q)
	switch {
	case !HasCoTiles():
		panic("gemm: CoTile without its kernels")
	case px < 1 || px > coTileMax || q < 0 || rows < 1:
		panic(fmt.Sprintf("gemm: CoTile of %d pixels, block %d of %d channels", px, q, p.M))
	case len(offs) != k || base < 0 || base+span+px-1 > len(x) || len(tile) < CoTileFloats:
		panic("gemm: CoTile input or scratch out of range")
	case at < 0 || at+(rows-1)*plane+px > len(out) || plane < px:
		panic("gemm: CoTile output out of range")
	}
	var bs *float32
	var padded [32]float32
	if bias != nil {
		_ = bias[p.M-1]
		if rows == 32 {
			bs = &bias[32*q]
		} else {
			copy(padded[:], bias[32*q:p.M])
			bs = &padded[0]
		}
	}
	w := p.data[q*k*32 : (q+1)*k*32]
	masks := 1<<rows - 1
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		b := bs
		if pc > 0 {
			b = nil
		}
		// A block of at most 16 channels (the last of 48, 80, 112) runs the
		// half kernels: their empty 16 lanes were a third of a 48-channel
		// layer's multiply-adds.
		switch half := rows <= 16 && !noHalfCoTiles; {
		case half && regBroadcast:
			coTileHBR(px, kc, &w[pc*32], &x[base], &offs[pc], &tile[0], b, pc == 0, pc+kc == k, &out[at], plane, masks)
		case half:
			coTileH(px, kc, &w[pc*32], &x[base], &offs[pc], &tile[0], b, pc == 0, pc+kc == k, &out[at], plane, masks)
		case regBroadcast:
			coTileBR(px, kc, &w[pc*32], &x[base], &offs[pc], &tile[0], b, pc == 0, pc+kc == k, &out[at], plane, masks)
		default:
			coTile(px, kc, &w[pc*32], &x[base], &offs[pc], &tile[0], b, pc == 0, pc+kc == k, &out[at], plane, masks)
		}
	}
}
