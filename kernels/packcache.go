package kernels

import (
	"hash/maphash"
	"slices"
	"sync"
	"unsafe"

	"github.com/onnxq/onnxq/kernels/gemm"
)

// PackCache shares the packed forms of constant weights (a Conv's GEMM
// panels, a MatMul's packed B) between the sessions made with it (see
// Options.Packs). Sensitivity analysis compiles a session for every
// variant of one model and tune one for every candidate; their weights are
// the same numbers, decoded again each time, and packing them again was
// 42% of a ResNet-50 sensitivity run's CPU, and a copy of every pack per
// live session. Entries are found by content (a hash, then the numbers
// compared), so a weight decoded twice finds the pack of the first; the
// cache keeps each entry's source numbers and pack until it is dropped.
// A weight's numbers must not change in place while a cache is in use (a
// changed array would still find its old packs): give one cache to
// sessions of models that are done being rewritten. Safe for concurrent
// use; packs are read-only once made.
type PackCache struct {
	seed    maphash.Seed
	mu      sync.Mutex
	arrays  map[arrayID]*packSource // by the array: found again without reading it
	content map[contentKey][]*packSource
	hits    int
	misses  int
}

// NewPackCache returns an empty cache for Options.Packs.
func NewPackCache() *PackCache {
	return &PackCache{seed: maphash.MakeSeed(), arrays: map[arrayID]*packSource{}, content: map[contentKey][]*packSource{}}
}

// arrayID is a slice's memory: the array an entry holds, so the address
// is not reused while the cache has it.
type arrayID struct {
	p *float32
	n int
}

type contentKey struct {
	hash uint64
	n    int
}

// packSource is one set of numbers and every pack made of it.
type packSource struct {
	src   []float32
	packs map[packKey]any
}

// packKey is what makes two packs of the same numbers interchangeable: the
// packing (form), the matrix it reads them as, and the GEMM kernel it
// packs for (tests switch kernels).
type packKey struct {
	form       packForm
	rows, cols int
	trans      bool
	kernel     string
}

type packForm uint8

const (
	formA packForm = iota + 1
	formANarrow
	formAStreamed
	formCo
	formB
)

// Stats reports how many lookups found a pack and how many made one.
func (c *PackCache) Stats() (hits, misses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// get returns the pack of src made by build for form, rows and cols (and
// trans), from the cache when an equal src was packed the same way before;
// with no cache, build's. build may return a nil pack (a form that does not
// apply), which is kept too.
func get[T any](c *PackCache, form packForm, src []float32, rows, cols int, trans bool, build func() T) T {
	if c == nil || len(src) == 0 {
		return build()
	}
	s := c.source(src)
	k := packKey{form: form, rows: rows, cols: cols, trans: trans, kernel: gemm.KernelName()}
	c.mu.Lock()
	if v, ok := s.packs[k]; ok {
		c.hits++
		c.mu.Unlock()
		return v.(T)
	}
	c.mu.Unlock()
	v := build() // outside the lock: other sessions go on meanwhile
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := s.packs[k]; ok { // made meanwhile by another session
		c.hits++
		return old.(T)
	}
	c.misses++
	s.packs[k] = v
	return v
}

// source returns the entry of src's numbers, made if there is none: by
// the array when it was seen, else by a hash of the numbers and then the
// numbers compared.
func (c *PackCache) source(src []float32) *packSource {
	id := arrayID{&src[0], len(src)}
	c.mu.Lock()
	s := c.arrays[id]
	c.mu.Unlock()
	if s != nil {
		return s
	}
	ck := contentKey{maphash.Bytes(c.seed, floatBytes(src)), len(src)}
	c.mu.Lock()
	cands := slices.Clone(c.content[ck])
	c.mu.Unlock()
	s = sameSource(cands, src) // compared outside the lock: megabytes at a time
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == nil {
		s = sameSource(c.content[ck][len(cands):], src) // added meanwhile
	}
	if s == nil {
		s = &packSource{src: src, packs: map[packKey]any{}}
		c.content[ck] = append(c.content[ck], s)
		// Only the array the entry holds is found by its address: the
		// key would keep any other array alive (a variant's decoded
		// weights, dropped with the variant).
		c.arrays[id] = s
	}
	return s
}

// sameSource is the entry of es whose numbers are src's, or nil.
func sameSource(es []*packSource, src []float32) *packSource {
	for _, e := range es {
		if sameBits(e.src, src) {
			return e
		}
	}
	return nil
}

func floatBytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// sameBits compares bit patterns, not values: -0 and 0 pack differently,
// and a NaN weight must find its own pack.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return string(floatBytes(a)) == string(floatBytes(b))
}

// packA is gemm.PackA of the m x k row-major weights w through c.
func (c *PackCache) packA(m, k int, w []float32) *gemm.PackedA {
	w = w[:m*k]
	return get(c, formA, w, m, k, false, func() *gemm.PackedA { return gemm.PackA(m, k, 1, gemm.Matrix{Data: w, Stride: k}) })
}

// packAT is gemm.PackA of the m x k operand held transposed in w (k x m,
// row-major: a ConvTranspose group's weights, read as W^T) through c.
func (c *PackCache) packAT(m, k int, w []float32) *gemm.PackedA {
	w = w[:m*k]
	return get(c, formA, w, m, k, true, func() *gemm.PackedA { return gemm.PackA(m, k, 1, gemm.Matrix{Data: w, Stride: m, Trans: true}) })
}

// packANarrow is gemm.PackANarrow through c.
func (c *PackCache) packANarrow(m, k int, w []float32) *gemm.PackedA {
	w = w[:m*k]
	return get(c, formANarrow, w, m, k, false, func() *gemm.PackedA { return gemm.PackANarrow(m, k, gemm.Matrix{Data: w, Stride: k}) })
}

// packAStreamed is gemm.PackAStreamed through c.
func (c *PackCache) packAStreamed(m, k int, w []float32) *gemm.PackedA {
	w = w[:m*k]
	return get(c, formAStreamed, w, m, k, false, func() *gemm.PackedA { return gemm.PackAStreamed(m, k, 1, gemm.Matrix{Data: w, Stride: k}) })
}

// packCo is gemm.PackCo through c.
func (c *PackCache) packCo(m, k int, w []float32) *gemm.PackedCo {
	w = w[:m*k]
	return get(c, formCo, w, m, k, false, func() *gemm.PackedCo { return gemm.PackCo(m, k, gemm.Matrix{Data: w, Stride: k}) })
}

// packB is gemm.PackB of the k x n product operand held row-major in b:
// as k x n, or as its transpose n x k when trans.
func (c *PackCache) packB(k, n int, b []float32, trans bool) *gemm.PackedB {
	stride := n
	if trans {
		stride = k
	}
	return get(c, formB, b, k, n, trans, func() *gemm.PackedB { return gemm.PackB(k, n, gemm.Matrix{Data: b, Stride: stride, Trans: trans}) })
}
