package kernels

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
)

// bufferPool recycles float32 buffers between the nodes of a run and across runs,
// so repeated runs (calibration runs a model hundreds of times) neither zero nor
// garbage-collect their intermediates. Buffers are kept by size class (four per
// octave, so at most 25% slack) and handed out sliced to the length asked for.
type bufferPool struct {
	mu   sync.Mutex
	free map[int][][]float32
}

func newBufferPool() *bufferPool { return &bufferPool{free: map[int][][]float32{}} }

// sizeClass rounds n up to the next of 4, 5, 6, 7 (x 2^k) so similar sizes share buffers.
func sizeClass(n int) int {
	if n <= 64 {
		return 64
	}
	shift := bits.Len(uint(n)) - 3 // keep the top three bits
	step := 1 << shift
	return (n + step - 1) / step * step
}

func (p *bufferPool) get(n int) []float32 {
	c := sizeClass(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		return b[:n]
	}
	return make([]float32, n, c)
}

func (p *bufferPool) put(b []float32) {
	c := cap(b)
	if c == 0 || sizeClass(c) != c {
		return // not one of ours (a kernel's own allocation): let the GC have it
	}
	p.mu.Lock()
	p.free[c] = append(p.free[c], b[:c])
	p.mu.Unlock()
}

// Float32 returns a float32 tensor whose contents are undefined: the kernel must
// write every element. Without a pool (a kernel run outside a Session) it is zeroed.
func (c *Context) Float32(shape []int) *graph.Tensor {
	if c.pool == nil {
		return graph.NewTensor(graph.Float, shape)
	}
	return graph.Float32Tensor(shape, c.pool.get(graph.Numel(shape)))
}

// Scratch returns a float32 work buffer of n elements with undefined contents;
// hand it back with Release when done.
func (c *Context) Scratch(n int) []float32 {
	if c.pool == nil {
		return make([]float32, n)
	}
	return c.pool.get(n)
}

// Release returns a Scratch buffer.
func (c *Context) Release(b []float32) {
	if c.pool != nil {
		c.pool.put(b)
	}
}

// bufKey identifies a float32 tensor's backing array (views share it).
func bufKey(t *graph.Tensor) (unsafe.Pointer, bool) {
	if t == nil || t.DType != graph.Float || !t.Loaded() {
		return nil, false
	}
	d := t.Float32s()
	if cap(d) == 0 {
		return nil, false
	}
	return unsafe.Pointer(unsafe.SliceData(d)), true
}
