package vec

import (
	"fmt"
	"math"
	"sync"
)

// Epilogue is what TapRows does to each sum before it stores it: multiply by
// Mul and add Add, each rounded (as Affine), then clip to [Lo, Hi] (as Clip,
// NaN passing through). It is BatchNormalization then Clip or Relu, fused
// into the convolution that feeds them, with the same bits as their passes.
type Epilogue struct{ Mul, Add, Lo, Hi float32 }

// NoEpilogue leaves every sum as it is, bit for bit: x*1 is x, x + -0 is x
// for every x (a +0 there would turn -0 into +0), and the infinite bounds
// clip nothing.
func NoEpilogue() Epilogue {
	return Epilogue{Mul: 1, Add: float32(math.Copysign(0, -1)), Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
}

// Apply sets each x of dst to its epilogue, in one pass (the same bits as
// Affine then Clip).
func (e Epilogue) Apply(dst []float32) {
	k := simdLen(len(dst))
	if k > 0 {
		epilogueAsm(&dst[0], k, &e)
	}
	for i := k; i < len(dst); i++ {
		dst[i] = e.apply(dst[i])
	}
}

func (e Epilogue) apply(s float32) float32 {
	v := float32(s*e.Mul) + e.Add
	if v < e.Lo {
		v = e.Lo
	}
	if v > e.Hi {
		v = e.Hi
	}
	return v
}

// TapRows computes rows x cols outputs of a direct convolution over a
// zero-padded plane, row after row into dst (cols apart):
//
//	dst[r*cols+c] = ep(bias + w[0]*src[offs[0]+r*srcRow+sx*c] + w[1]*src[offs[1]+...] + ...)
//
// adding the taps in order, one rounded multiply and one rounded add each (as
// SumTaps). sx, the column stride, is 1 or 2. The sums stay in registers
// across all taps and go through the epilogue on their way out, so an output
// is written once; a band of a depthwise convolution's channel is one call.
// The vector loop reads whole groups of 8 columns (stride 2: 16 floats per
// group), so src must reach sx*max(cols, 8) past the last row's start for
// every tap; and on maps narrower than 8 it may write up to 8-cols floats
// past the outputs where dst is longer than rows*cols (a caller that writes
// them later saves a copy through a scratch buffer).
func TapRows(dst, src []float32, offs []int, w []float32, bias float32, rows, cols, srcRow, sx int, ep Epilogue) error {
	if len(offs) != len(w) {
		return fmt.Errorf("vec.TapRows: %d offsets for %d weights", len(offs), len(w))
	}
	if sx != 1 && sx != 2 {
		return fmt.Errorf("vec.TapRows: column stride %d (want 1 or 2)", sx)
	}
	if rows < 0 || cols < 0 || srcRow < 0 || rows*cols > len(dst) {
		return fmt.Errorf("vec.TapRows: %d x %d outputs (source rows %d apart) into %d", rows, cols, srcRow, len(dst))
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	reach := (rows-1)*srcRow + sx*max(cols, 8)
	for _, o := range offs {
		if o < 0 || o+reach > len(src) {
			return fmt.Errorf("vec.TapRows: tap offset %d reads past a source of %d for %d x %d outputs", o, len(src), rows, cols)
		}
	}
	if !useSIMD || len(offs) == 0 {
		tapRowsGo(dst, src, offs, w, bias, rows, cols, srcRow, sx, ep)
		return nil
	}
	// A 3x3 kernel whose rows are output rows apart (stride 1 across and
	// down, no dilation): each input row loaded once for the output rows it
	// feeds (tapRows3AVX512; same taps in the same order, same bits).
	if use512 && !noTapRows3 && sx == 1 && rows >= 4 && cols >= 16 && unitThreeByThree(offs, srcRow) {
		tapRows3Asm(&dst[0], &src[offs[0]], &w[0], rows, cols, srcRow, bias, &ep)
		return nil
	}
	// Narrower than 8, each row's 8-wide store runs on into the rows after
	// it, which are written later; past the last row only where dst has
	// room. Otherwise small maps (7x7) go whole through a scratch buffer with
	// room for the last row's store, and larger ones the rows whose store
	// would pass the end of dst through a scratch vector.
	if cols < 8 && len(dst) >= (rows-1)*cols+8 {
		tapRowsAsm(&dst[0], &src[0], &offs[0], &w[0], len(offs), rows, cols, srcRow, sx, bias, &ep)
		return nil
	}
	if cols < 8 && rows*cols+8 <= 72 {
		var t [72]float32
		tapRowsAsm(&t[0], &src[0], &offs[0], &w[0], len(offs), rows, cols, srcRow, sx, bias, &ep)
		copy(dst[:rows*cols], t[:])
		return nil
	}
	direct := rows
	if cols < 8 {
		direct = 0
		if rows*cols >= 8 {
			direct = (rows*cols-8)/cols + 1
		}
	}
	if direct > 0 {
		tapRowsAsm(&dst[0], &src[0], &offs[0], &w[0], len(offs), direct, cols, srcRow, sx, bias, &ep)
	}
	for r := direct; r < rows; r++ {
		var t [8]float32
		tapRowsAsm(&t[0], &src[r*srcRow], &offs[0], &w[0], len(offs), 1, cols, srcRow, sx, bias, &ep)
		copy(dst[r*cols:(r+1)*cols], t[:cols])
	}
	return nil
}

// unitThreeByThree reports whether offs are a 3x3 kernel's taps, row by row,
// one column apart and srcRow apart down.
func unitThreeByThree(offs []int, srcRow int) bool {
	if len(offs) != 9 {
		return false
	}
	for t, o := range offs {
		if o != offs[0]+t/3*srcRow+t%3 {
			return false
		}
	}
	return true
}

func tapRowsGo(dst, src []float32, offs []int, w []float32, bias float32, rows, cols, srcRow, sx int, ep Epilogue) {
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			at := r*srcRow + sx*c
			s := bias
			for t, o := range offs {
				s += float32(w[t] * src[o+at]) // the conversion keeps the multiply rounded (no FMA)
			}
			dst[r*cols+c] = ep.apply(s)
		}
	}
}

// CopyRows copies rows x cols floats from src (rows srcRow apart) to dst
// (rows dstRow apart): an input plane into the inside of a zero-padded one,
// without a call per row.
func CopyRows(dst []float32, dstRow int, src []float32, srcRow, rows, cols int) error {
	if rows <= 0 || cols <= 0 {
		return nil
	}
	if cols > dstRow || cols > srcRow || (rows-1)*dstRow+cols > len(dst) || (rows-1)*srcRow+cols > len(src) {
		return fmt.Errorf("vec.CopyRows: %d x %d floats from rows %d apart in %d to rows %d apart in %d", rows, cols, srcRow, len(src), dstRow, len(dst))
	}
	if !useSIMD {
		for r := 0; r < rows; r++ {
			copy(dst[r*dstRow:r*dstRow+cols], src[r*srcRow:])
		}
		return nil
	}
	copyRowsAsm(&dst[0], dstRow, &src[0], srcRow, rows, cols)
	return nil
}

// SplitRows deinterleaves rows x cols floats of src (rows srcRow apart): the
// even columns of row r go to a[r*dstRow:], the odd ones to b[r*dstRow:]. A
// stride-2 convolution's input laid out so, each tap reads its columns
// contiguously.
func SplitRows(a, b []float32, dstRow int, src []float32, srcRow, rows, cols int) error {
	if rows <= 0 || cols <= 0 {
		return nil
	}
	ne, no := (cols+1)/2, cols/2
	if ne > dstRow || cols > srcRow || (rows-1)*dstRow+ne > len(a) || (rows-1)*dstRow+no > len(b) || (rows-1)*srcRow+cols > len(src) {
		return fmt.Errorf("vec.SplitRows: %d x %d floats from rows %d apart in %d to rows %d apart in %d and %d", rows, cols, srcRow, len(src), dstRow, len(a), len(b))
	}
	if !useSIMD {
		for r := 0; r < rows; r++ {
			s := src[r*srcRow : r*srcRow+cols]
			ra, rb := a[r*dstRow:], b[r*dstRow:]
			for i := range ne {
				ra[i] = s[2*i]
			}
			for i := range no {
				rb[i] = s[2*i+1]
			}
		}
		return nil
	}
	splitRowsAsm(&a[0], &b[0], dstRow, &src[0], srcRow, rows, cols)
	return nil
}

// noTapRows3 sends 3x3 kernels through the generic kernel, for the
// benchmark that compares the two.
var noTapRows3 = false

// DealRows deals the columns of rows x cols floats of src (rows srcRow
// apart) to the len(dst) destinations, 2, 4 or 8 of them: column c of row r
// goes to dst[c%s][r*dstRow + c/s]. A stride-s convolution's input row laid
// out in its column phases at once, where a gather per phase read each row s
// times, a value at a time (ConvNeXt's and Swin's 4x4 stride-4 stems,
// ViTs' patch embeddings). It splits by parity log2(s) times (SplitRows),
// through blocks of rows in scratch.
func DealRows(dst [][]float32, dstRow int, src []float32, srcRow, rows, cols int) error {
	s := len(dst)
	if s != 2 && s != 4 && s != 8 {
		return fmt.Errorf("vec.DealRows: %d destinations, want 2, 4 or 8", s)
	}
	if rows <= 0 || cols <= 0 {
		return nil
	}
	if cols > srcRow || (cols+s-1)/s > dstRow || (rows-1)*srcRow+cols > len(src) {
		return fmt.Errorf("vec.DealRows: %d x %d floats from rows %d apart in %d to rows %d apart", rows, cols, srcRow, len(src), dstRow)
	}
	for i, d := range dst {
		if n := (cols - i + s - 1) / s; n > 0 && (rows-1)*dstRow+n > len(d) {
			return fmt.Errorf("vec.DealRows: destination %d holds %d floats, rows of %d %d apart need %d", i, len(d), n, dstRow, (rows-1)*dstRow+n)
		}
	}
	if s == 2 {
		return SplitRows(dst[0], dst[1], dstRow, src, srcRow, rows, cols)
	}
	if (cols+1)/2 > dealBlock {
		// A row longer than the scratch: column phases one at a time.
		for i, d := range dst {
			for r := 0; r < rows; r++ {
				for j, c := 0, i; c < cols; j, c = j+1, c+s {
					d[r*dstRow+j] = src[r*srcRow+c]
				}
			}
		}
		return nil
	}
	// Scratch from a pool: a local array is zeroed on every call (more
	// than the copies of a stem's strip of rows).
	buf := dealScratch.Get().(*[4 * dealBlock]float32)
	defer dealScratch.Put(buf)
	return dealRows(dst, dstRow, src, srcRow, rows, cols, buf[:])
}

// dealRows is DealRows on checked arguments, s = len(dst) 4 or 8, with
// scratch: this level's two halves in its first 2*dealBlock floats, the
// rest for the level below.
func dealRows(dst [][]float32, dstRow int, src []float32, srcRow, rows, cols int, scratch []float32) error {
	s := len(dst)
	ne, no := (cols+1)/2, cols/2
	per := max(1, dealBlock/ne)
	evensTmp, oddsTmp, below := scratch[:dealBlock], scratch[dealBlock:2*dealBlock], scratch[2*dealBlock:]
	var evens, odds [4][]float32
	for r0 := 0; r0 < rows; r0 += per {
		n := min(per, rows-r0)
		// Even columns to evensTmp, odd ones to oddsTmp, rows ne apart;
		// each then deals to the destinations of its parity (column c =
		// 2e + parity lands at dst[c%s], e%(s/2) = c%s/2).
		if err := SplitRows(evensTmp, oddsTmp, ne, src[r0*srcRow:], srcRow, n, cols); err != nil {
			return err
		}
		for j := 0; j < s/2; j++ {
			evens[j], odds[j] = dst[2*j][r0*dstRow:], dst[2*j+1][r0*dstRow:]
		}
		for h, half := range [2]struct {
			to   [][]float32
			from []float32
			cols int
		}{{evens[:s/2], evensTmp, ne}, {odds[:s/2], oddsTmp, no}} {
			if half.cols == 0 {
				continue
			}
			var err error
			if s == 4 {
				err = SplitRows(half.to[0], half.to[1], dstRow, half.from, ne, n, half.cols)
			} else {
				err = dealRows(half.to, dstRow, half.from, ne, n, half.cols, below)
			}
			if err != nil {
				return fmt.Errorf("vec.DealRows: half %d: %v", h, err)
			}
		}
	}
	return nil
}

// dealBlock is how many floats each half of a DealRows level's scratch
// holds (16 KiB: a block of rows stays in L1 between its passes).
const dealBlock = 4096

var dealScratch = sync.Pool{New: func() any { return new([4 * dealBlock]float32) }}
