package kernels

import (
	"math"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/onnxq/onnxq/kernels/vec"
)

// NonMaxSuppression's selection for one batch and class, as the ONNX
// reference makes it: candidates in descending score (equal scores by box
// index, NaN last), each kept unless the IoU of it and a box kept before,
// inter/union in float32, exceeds iou_threshold (boxes that do not
// intersect, or of no area, never suppress), until
// max_output_boxes_per_class are kept.
//
// Selection usually stops after max_output_boxes_per_class of thousands of
// candidates, so they are taken best first from a window of the best few
// (a scan that keeps the best k seen so far), and only when suppression
// runs through the whole window is the next, larger one gathered by
// another scan.

// nmsTestWindow, when positive, sets the first window's size: tests make it
// tiny so that classes take many windows.
var nmsTestWindow = 0

// nmsParams are a NonMaxSuppression run's box format and thresholds.
type nmsParams struct {
	centered bool
	iou      float32
	maxOut   int
	useMin   bool // score_threshold given
	minScore float32
}

// nmsSelectors keeps the workers' scratch between runs.
var nmsSelectors = sync.Pool{New: func() any { return new(nmsSelector) }}

// nmsSelector holds one worker's scratch between classes.
type nmsSelector struct {
	nmsParams

	keys, sample []uint64
	pass         *[nmsChunk / 8]uint64 // gather's comparisons
	// The selected boxes that can suppress (live ones), and their extents
	// coded for suppressed's loop: nmsSpan(x1, x0) and nmsSpan(y1, y0).
	kept   []nmsBox
	xs, ys []uint64
}

// nmsKey orders candidates as a stable descending sort by score does:
// ascending keys are descending scores, equal scores (+0 and -0 too) by
// ascending index. NaN scores take no key: they go last, apart.
func nmsKey(s float32, i int) uint64 {
	u := math.Float32bits(s)
	if u == 1<<31 {
		u = 0 // -0 ties +0
	}
	// u's sign-magnitude order as unsigned, inverted: the best score first.
	ord := u ^ (uint32(int32(u)>>31) | 1<<31)
	return uint64(^ord)<<32 | uint64(uint32(i))
}

// nmsKeyScore is the score a key was made from (-0 as +0).
func nmsKeyScore(k uint64) float32 {
	ord := ^uint32(k >> 32)
	if ord&(1<<31) != 0 {
		return math.Float32frombits(ord &^ (1 << 31))
	}
	return math.Float32frombits(^ord)
}

// class appends to dst the boxes selected among scores s (one batch and
// class) whose corners or centres are bx, 4 values a box.
func (z *nmsSelector) class(s, bx []float32, dst []int32) []int32 {
	z.kept, z.xs, z.ys = z.kept[:0], z.xs[:0], z.ys[:0]
	n, start := len(s), len(dst)
	lo := float32(math.Inf(-1)) // without a threshold -Inf and NaN come last, below
	if z.useMin {
		lo = z.minScore
	}
	k := min(max(2*min(z.maxOut, n), 64), n)
	if nmsTestWindow > 0 {
		k = min(nmsTestWindow, n)
	}
	var after uint64 // keys up to here are taken (every key exceeds 0)
	for {
		// A window: at least the best k keys after `after` (all of them
		// where fewer), in a buffer of twice that. The first window's scan
		// starts from a cut guessed from a sample where k is few of n.
		size := min(2*k, n+1)
		if cap(z.keys) < size {
			z.keys = make([]uint64, 0, size)
		}
		cut, partial := lo, false // partial: candidates were left for another window
		if after == 0 && n >= 4*k && nmsTestWindow == 0 {
			cut = z.guessCut(s, lo, k)
			partial = cut > lo
		}
		keys, partial := z.gather(s, z.keys[:0:size], after, cut, k, partial)
		// The keys gathered come first in order: whatever the cut kept out,
		// or a trim dropped, ranks after every key left.
		nmsHeapInit(keys)
		for len(keys) > 0 {
			if len(dst)-start == z.maxOut {
				return dst
			}
			after = nmsHeapPop(&keys)
			dst = z.consider(int(uint32(after)), bx, dst)
		}
		if !partial || len(dst)-start == z.maxOut {
			break
		}
		k = min(4*k, n)
	}
	if z.useMin || len(dst)-start == z.maxOut {
		return dst
	}
	// The ranks a stable sort gives below every number: -Inf, then NaN.
	for i, v := range s {
		if v < -math.MaxFloat32 {
			if len(dst)-start == z.maxOut {
				return dst
			}
			dst = z.consider(i, bx, dst)
		}
	}
	for i, v := range s {
		if v != v {
			if len(dst)-start == z.maxOut {
				return dst
			}
			dst = z.consider(i, bx, dst)
		}
	}
	return dst
}

// gather appends to keys, which has room for size, the keys after
// `after` of scores above the cut, keeping the best k whenever it fills
// (and raising the cut to the k-th), and reports whether any candidate
// above the first cut was left out. The comparisons run a chunk at a time
// with vector instructions, and the loop visits only the scores that pass.
func (z *nmsSelector) gather(s []float32, keys []uint64, after uint64, cut float32, k int, partial bool) ([]uint64, bool) {
	size := cap(keys)
	if z.pass == nil {
		z.pass = new([nmsChunk / 8]uint64)
	}
	// Go's bools, one byte each, 0 or 1: eight a word.
	pass := unsafe.Slice((*bool)(unsafe.Pointer(&z.pass[0])), nmsChunk)
	for c0 := 0; c0 < len(s); c0 += nmsChunk {
		chunk := s[c0:min(c0+nmsChunk, len(s))]
		vec.CmpScalar(vec.CmpGreater, pass, chunk, cut) // strictly greater, as the reference's score_threshold
		clear(pass[len(chunk):])
		for w, f := range z.pass[:(len(chunk)+7)/8] {
			for ; f != 0; f &= f - 1 {
				i := c0 + w*8 + bits.TrailingZeros64(f)/8
				if v := s[i]; v > cut { // the cut may have risen since
					key := nmsKey(v, i)
					if key <= after {
						continue
					}
					keys = append(keys, key)
					if len(keys) == size {
						nmsSelectKeys(keys, k)
						keys = keys[:k]
						// A later box of the cut's score comes after the k-th.
						cut, partial = nmsKeyScore(keys[k-1]), true
					}
				}
			}
		}
	}
	return keys, partial
}

// nmsChunk is how many scores gather compares at once.
const nmsChunk = 512

// guessCut returns a score that about 3k/2 of s exceed, from every 16th,
// or lo where they are too few: a first cut that spares the scan most of
// the candidates it would take in and drop, with their mispredicted
// branches. A guess that proves too high costs a second scan.
func (z *nmsSelector) guessCut(s []float32, lo float32, k int) float32 {
	const stride = 16
	sample := z.sample[:0]
	for i := 0; i < len(s); i += stride {
		if v := s[i]; v > lo {
			sample = append(sample, nmsKey(v, i))
		}
	}
	z.sample = sample
	want := (3*k/2 + stride - 1) / stride
	if len(sample) <= want {
		return lo
	}
	nmsSelectKeys(sample, want)
	return nmsKeyScore(sample[want-1])
}

// consider selects box i unless a selected box overlaps it too much. Only
// a live box, x0 < x1 and y0 < y1 (no NaN) and of positive area, can
// suppress or be suppressed: where one of a pair is not, the intersection
// or that area is not positive (or is NaN), and the IoU test fails. So the
// others skip the test and are not kept for it.
func (z *nmsSelector) consider(i int, bx []float32, dst []int32) []int32 {
	b := nmsBoxOf(bx[i*4:i*4+4], z.centered)
	if !(b.x0 < b.x1 && b.y0 < b.y1 && b.area > 0) {
		return append(dst, int32(i))
	}
	if z.suppressed(b) {
		return dst
	}
	z.kept = append(z.kept, b)
	z.xs = append(z.xs, nmsSpan(b.x1, b.x0)|nmsLanes)
	z.ys = append(z.ys, nmsSpan(b.y1, b.y0)|nmsLanes)
	return append(dst, int32(i))
}

// suppressed reports whether a kept box overlaps live box b too much.
// Live boxes intersect only where q.x1 > b.x0, q.x0 < b.x1 and so in y;
// the loop tests the four at once, as order-keeping 31-bit codes in two
// words (nmsSpan), and only the pairs that pass (few: the boxes a detector
// keeps seldom overlap) with the IoU.
func (z *nmsSelector) suppressed(b nmsBox) bool {
	bx, by := nmsSpan(b.x0, b.x1), nmsSpan(b.y0, b.y1)
	xs := z.xs
	ys := z.ys[:len(xs)]
	for j := range xs {
		if (xs[j]-bx)&(ys[j]-by)&nmsLanes == nmsLanes && z.overlaps(b, j) {
			return true
		}
	}
	return false
}

// nmsLanes are the top bits of nmsSpan's two halves.
const nmsLanes = 1<<63 | 1<<31

// nmsSpan packs the codes of hi and of lo, inverted, into the halves of a
// word. A float32's code is its 32-bit order-keeping key halved (31 bits,
// never decreasing as the value grows), so with the top bits set in one
// word, subtracting another leaves each half's top bit set where its code
// is at least the other's, without a borrow between the halves:
// (nmsSpan(q.x1, q.x0)|nmsLanes) - nmsSpan(b.x0, b.x1) has both set
// wherever q.x1 > b.x0 and q.x0 < b.x1, and maybe where they are equal.
func nmsSpan(hi, lo float32) uint64 {
	code := func(f float32) uint64 {
		u := math.Float32bits(f)
		return uint64((u ^ (uint32(int32(u)>>31) | 1<<31)) >> 1)
	}
	return code(hi)<<32 | (1<<31 - 1 - code(lo))
}

// overlaps reports whether the IoU of live box b and kept box j exceeds the
// threshold, with the reference's operations in its order.
func (z *nmsSelector) overlaps(b nmsBox, j int) bool {
	q := &z.kept[j]
	ix := min(b.x1, q.x1) - max(b.x0, q.x0)
	iy := min(b.y1, q.y1) - max(b.y0, q.y0)
	if ix <= 0 || iy <= 0 {
		return false
	}
	inter := float32(ix * iy)
	union := b.area + q.area - inter
	return inter > 0 && union > 0 && inter/union > z.iou
}

// nmsBoxOf turns [y1, x1, y2, x2] (any two opposite corners) or [x_center,
// y_center, width, height] into sorted corners and the area.
func nmsBoxOf(c []float32, centered bool) nmsBox {
	c = c[:4]
	var b nmsBox
	if centered {
		hw, hh := c[2]/2, c[3]/2
		b = nmsBox{x0: c[0] - hw, x1: c[0] + hw, y0: c[1] - hh, y1: c[1] + hh}
	} else {
		b = nmsBox{x0: min(c[1], c[3]), x1: max(c[1], c[3]), y0: min(c[0], c[2]), y1: max(c[0], c[2])}
	}
	// The conversion rounds the product, so no fused multiply-add changes it.
	b.area = float32((b.x1 - b.x0) * (b.y1 - b.y0))
	return b
}

// nmsSelectKeys moves the k smallest of a (distinct keys) to a[:k], the
// largest of them to a[k-1]: quickselect about a median of three, with a
// partition loop that moves every key and advances by the comparison, not
// branching on it (half the comparisons would be mispredicted).
func nmsSelectKeys(a []uint64, k int) {
	t := k - 1
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[mid] < a[hi] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[hi] // the median; a[:j] < p <= a[j:i]
		j := lo
		for i := lo; i < hi; i++ {
			x := a[i]
			a[i] = a[j]
			a[j] = x
			_, less := bits.Sub64(x, p, 0) // the borrow: x < p
			j += int(less)
		}
		a[hi], a[j] = a[j], p
		switch {
		case t < j:
			hi = j - 1
		case t > j:
			lo = j + 1
		default:
			return
		}
	}
}

// nmsHeapInit makes a a binary min-heap in linear time.
func nmsHeapInit(a []uint64) {
	for i := len(a)/2 - 1; i >= 0; i-- {
		nmsHeapDown(a, i)
	}
}

func nmsHeapDown(a []uint64, i int) {
	n := len(a)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n {
			_, right := bits.Sub64(a[c+1], a[c], 0) // the borrow: a[c+1] < a[c]
			c += int(right)
		}
		if a[i] < a[c] {
			return
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
}

// nmsHeapPop removes and returns the smallest key. The hole at the root
// goes down to a leaf by the smaller child, picked without a branch (the
// comparison is a coin toss), and the last key then rises from there; it
// seldom rises far (Floyd's variant of the pop).
func nmsHeapPop(h *[]uint64) uint64 {
	a := *h
	top, n := a[0], len(a)-1
	x := a[n]
	a = a[:n]
	*h = a
	i := 0
	for {
		c := 2*i + 1
		if c+1 >= n {
			if c < n { // a lone left child
				a[i], i = a[c], c
			}
			break
		}
		_, right := bits.Sub64(a[c+1], a[c], 0) // the borrow: a[c+1] < a[c]
		c += int(right)
		a[i], i = a[c], c
	}
	for i > 0 {
		p := (i - 1) / 2
		if a[p] < x {
			break
		}
		a[i], i = a[p], p
	}
	if n > 0 {
		a[i] = x
	}
	return top
}
