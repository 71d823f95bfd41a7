//go:build amd64 && !purego

package vec

import "unsafe"

// Erf and GeluErf on AVX-512. The one-pass routines (erfAVX512,
// geluErfAVX512) run both of erf's branches on every lane and blend: the
// small one (a short polynomial, |u| < erfSplit) and the large one (a
// degree-11 polynomial, an exact split of the exponent and an exp, three
// times the work), which only a minority of lanes need (20% of Gelu's
// x/sqrt2 for x ~ N(0,1), 36% of N(0,1) itself), though nearly every
// sixteen lanes hold one. The split routines run the large branch on those
// lanes only, packed together (see gen_math.py's split_routine); where most
// lanes are large, or the block is short, the one-pass routines on two
// vectors a step are faster. Both perform the one-pass routines' operations
// on every lane whose result they keep, so Erf and GeluErf give the same
// bits as erfAVX512 and geluErfAVX512 (and AVX2), which the tests check.

// erfSplitAVX512 and geluErfSplitAVX512 take n <= splitBlock floats and
// return how many were large (not below erfSplit, or NaN).
//
//go:noescape
func erfSplitAVX512(dst, x *float32, n int) int

//go:noescape
func geluErfSplitAVX512(dst, x *float32, n int) int

// erfX2AVX512 and geluErfX2AVX512 are the one-pass routines on two vectors
// a step, for any n; they return how many lanes were large.
//
//go:noescape
func erfX2AVX512(dst, x *float32, n int) int

//go:noescape
func geluErfX2AVX512(dst, x *float32, n int) int

const (
	// splitBlock is the most floats a split routine takes (gen_math.py's
	// SPLIT_BLOCK, which sizes its buffers): the block's input, output and
	// packed lanes, 2 KB each, stay in L1 across its three passes.
	splitBlock = 512
	// splitMin is the fewest: below, the latency of three passes in a row
	// outweighs the saving (measured: the split routine wins from about 96
	// floats with a quarter of them large, 128 with half).
	splitMin = 96
)

// erfBlocks runs Erf (or GeluErf) over n floats a block at a time: a split
// routine, or the two-vector one-pass routine for a short block or after a
// block whose lanes were more than 3/4 large (where the two cross over,
// measured on random mixes of large and small lanes).
func erfBlocks(gelu bool, dst, x *float32, n int) {
	dense := false
	for i := 0; i < n; i += splitBlock {
		d := (*float32)(unsafe.Add(unsafe.Pointer(dst), 4*i))
		v := (*float32)(unsafe.Add(unsafe.Pointer(x), 4*i))
		m := min(splitBlock, n-i)
		var large int
		switch one := dense || m < splitMin; {
		case one && gelu:
			large = geluErfX2AVX512(d, v, m)
		case one:
			large = erfX2AVX512(d, v, m)
		case gelu:
			large = geluErfSplitAVX512(d, v, m)
		default:
			large = erfSplitAVX512(d, v, m)
		}
		dense = 4*large > 3*m
	}
}
