package vec

import "fmt"

// C8Taps runs a direct convolution on 8 channels at once, in the blocked
// layout with channels innermost ("8c"): a zero-padded map of vectors, one a
// position, lane l holding channel l. Interleave lays the 8 channel planes
// out so, and Run computes every output position of the 8 channels from it.
// The geometry is given as position tables, checked once here, so that the
// calls per block of channels check only what changes from block to block.
type C8Taps struct {
	vecs int   // positions of the padded map
	in   []int // per input position, its position in the padded map
	base []int // per output position, where its first tap reads
	offs []int // per tap, where it reads relative to base
	// runs are the output positions [start, end) whose first taps are
	// consecutive (a stride-1 row), when every run has 16 or more: then
	// AVX-512 takes 16 positions a group, a pair a load.
	runs [][2]int
}

// NewC8Taps checks that every input position lands in a padded map of vecs
// positions and that every tap of every output position reads inside it.
func NewC8Taps(vecs int, in, base, offs []int) (*C8Taps, error) {
	for _, p := range in {
		if p < 0 || p >= vecs {
			return nil, fmt.Errorf("vec.NewC8Taps: input position %d is outside %d", p, vecs)
		}
	}
	if len(base) > 0 && len(offs) > 0 {
		lo, hi := base[0], base[0]
		for _, b := range base {
			lo, hi = min(lo, b), max(hi, b)
		}
		olo, ohi := offs[0], offs[0]
		for _, o := range offs {
			olo, ohi = min(olo, o), max(ohi, o)
		}
		if lo+olo < 0 || hi+ohi >= vecs {
			return nil, fmt.Errorf("vec.NewC8Taps: taps read positions %d to %d of %d", lo+olo, hi+ohi, vecs)
		}
	}
	t := &C8Taps{vecs: vecs, in: in, base: base, offs: offs}
	for p0 := 0; p0 < len(base); {
		p1 := p0 + 1
		for p1 < len(base) && base[p1] == base[p1-1]+1 {
			p1++
		}
		if p1-p0 < 16 {
			t.runs = nil
			break
		}
		t.runs = append(t.runs, [2]int{p0, p1})
		p0 = p1
	}
	return t, nil
}

// Interleave copies 8 planes of len(in) floats into dst's positions, lane l
// from src[chans[l]:]:
//
//	dst[in[q]*8+l] = src[chans[l]+q]
//
// leaving dst's other positions (the padding) as they are. Groups of 8
// positions (the last overlapping the one before) are transposed in
// registers.
func (t *C8Taps) Interleave(dst, src []float32, chans *[8]int) error {
	n := len(t.in)
	if len(dst) < 8*t.vecs {
		return fmt.Errorf("vec.C8Taps.Interleave: %d floats for %d positions of 8", len(dst), t.vecs)
	}
	for _, c := range chans {
		if c < 0 || c+n > len(src) {
			return fmt.Errorf("vec.C8Taps.Interleave: plane at %d of %d floats reads past a source of %d", c, n, len(src))
		}
	}
	if n == 0 {
		return nil
	}
	if useSIMD && n >= 8 {
		interleave8Asm(&dst[0], &t.in[0], &src[0], chans, n)
		return nil
	}
	for q, p := range t.in {
		d := dst[p*8 : p*8+8]
		for l, c := range chans {
			d[l] = src[c+q]
		}
	}
	return nil
}

// Epilogue8 is Epilogue with one value per lane (channel).
type Epilogue8 struct{ Mul, Add, Lo, Hi [8]float32 }

// Set puts e in lane l.
func (e *Epilogue8) Set(l int, ep Epilogue) {
	e.Mul[l], e.Add[l], e.Lo[l], e.Hi[l] = ep.Mul, ep.Add, ep.Lo, ep.Hi
}

// Run computes every output position p of nch <= 8 channels from src (in
// Interleave's layout) and stores channel l's at dst[l*stride+p]:
//
//	s = bias[l] + w[l]*src[(base[p]+offs[0])*8+l] + w[8+l]*src[(base[p]+offs[1])*8+l] + ...
//	dst[l*stride+p] = ep(s)
//
// adding the taps in order, one rounded multiply and one rounded add each,
// then the epilogue as Epilogue does it (none for a nil ep): the same bits
// as TapRows on the same channel. w holds each tap's 8 weights, one per
// lane. Positions go 8 at a time (the last group overlapping the one
// before) with their sums in registers across the taps, transposed on the
// way out so that a channel's 8 outputs are stored together; fewer than 8
// positions go through a scratch block. Lanes from nch on are computed and
// dropped.
func (t *C8Taps) Run(dst []float32, stride int, src, w, bias []float32, ep *Epilogue8, nch int) error {
	n := len(t.base)
	if len(w) != 8*len(t.offs) || len(bias) < 8 {
		return fmt.Errorf("vec.C8Taps.Run: %d weights and %d biases for %d taps of 8 lanes", len(w), len(bias), len(t.offs))
	}
	if nch < 1 || nch > 8 || stride < n || (nch-1)*stride+n > len(dst) {
		return fmt.Errorf("vec.C8Taps.Run: %d channels of %d outputs %d apart into %d", nch, n, stride, len(dst))
	}
	if len(src) < 8*t.vecs {
		return fmt.Errorf("vec.C8Taps.Run: %d floats for %d positions of 8", len(src), t.vecs)
	}
	if n == 0 {
		return nil
	}
	if !useSIMD || len(t.offs) == 0 {
		t.runGo(dst, stride, src, w, bias, ep, nch)
		return nil
	}
	if hasC8x16 && t.runs != nil {
		for _, r := range t.runs {
			tapsC8x16Asm(&dst[r[0]], stride, &src[0], t.base[r[0]], &t.offs[0], &w[0], len(t.offs), &bias[0], ep, r[1]-r[0], nch)
		}
		return nil
	}
	if n >= 8 {
		tapsC8Asm(&dst[0], stride, &src[0], &t.base[0], &t.offs[0], &w[0], len(t.offs), &bias[0], ep, n, nch)
		return nil
	}
	// Fewer than 8 positions: the missing ones repeat the last, into an 8 x 8
	// block of which n a channel are kept.
	var b [8]int
	copy(b[:], t.base)
	for p := n; p < 8; p++ {
		b[p] = t.base[n-1]
	}
	var blk [64]float32
	tapsC8Asm(&blk[0], 8, &src[0], &b[0], &t.offs[0], &w[0], len(t.offs), &bias[0], ep, 8, nch)
	for l := range nch {
		copy(dst[l*stride:l*stride+n], blk[l*8:])
	}
	return nil
}

func (t *C8Taps) runGo(dst []float32, stride int, src, w, bias []float32, ep *Epilogue8, nch int) {
	for l := range nch {
		e := NoEpilogue()
		if ep != nil {
			e = Epilogue{Mul: ep.Mul[l], Add: ep.Add[l], Lo: ep.Lo[l], Hi: ep.Hi[l]}
		}
		for p, b := range t.base {
			s := bias[l]
			for i, o := range t.offs {
				s += float32(w[i*8+l] * src[(b+o)*8+l]) // the conversion keeps the multiply rounded (no FMA)
			}
			dst[l*stride+p] = e.apply(s)
		}
	}
}
