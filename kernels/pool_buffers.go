package kernels

import (
	"math/bits"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
)

// bufferPool recycles tensor buffers between the nodes of a run and across runs,
// so repeated runs (calibration runs a model hundreds of times) neither zero nor
// garbage-collect their intermediates. Buffers are raw memory kept by byte size
// class (four per octave, so at most 25% slack) and viewed as whatever element
// type is asked for: the int64 and bool tensors of a transformer's mask and
// position arithmetic reuse the same memory as its float32 activations.
//
// The pool takes back only buffers it handed out and that are still out: a
// kernel's own allocation (graph.NewTensor) goes to the garbage collector.
// Accepting those would grow the free lists by one buffer per run, since
// nothing asks for them again.
type bufferPool struct {
	mu   sync.Mutex
	free [][]idleBuf            // by class index (classIndex): the idle buffers, oldest first
	out  map[unsafe.Pointer]int // buffers handed out: byte class
	// pinned buffers hold the outputs of several steps (a Concat's inputs
	// and output, concat_place.go): put ignores them until unpinned, so a
	// kernel that releases what it took for its output cannot free the rest.
	pinned map[unsafe.Pointer]bool
	made   int    // buffers allocated so far (not taken from the free lists)
	puts   uint64 // buffers put back so far: the clock of idleBuf.freed
	// reach is how many classes above a request's own get looks in:
	// poolReach for a session's own pool without taps, else 0 (see
	// poolReach).
	reach int
	// owner holds, per buffer out, the tensor Context.tensor made on it
	// (graph.TensorAt), and shells the tensors of buffers a session took
	// back with putShell: nothing uses them any more, and the next tensor
	// is made in one of them (graph.ReuseAt) instead of a new allocation.
	// A run's tensors (176 bytes each) were most of its garbage, fresh
	// heap until the collector's goal is reached, each new page a fault
	// (13-15 us on the 2-vCPU VM).
	owner  map[unsafe.Pointer]*graph.Tensor
	shells []*graph.Tensor
	// views are the tensors tensorAt made as views over buffers out
	// (Reshape's and the like), which die with their buffer as its owner
	// does.
	views []placedTensor
}

// maxShells bounds the idle tensors a pool keeps (a run takes back as many
// as it makes; the bound is for pools shared by sessions).
const maxShells = 4096

// idleBuf is a buffer in a free list and when it was put back (a count of
// puts): get takes the most recently freed of the classes that fit (see
// poolReach).
type idleBuf struct {
	p     unsafe.Pointer
	freed uint64
}

// poolReach is how many classes above a request's own (4 a doubling: up to
// 4x its size) get looks in for the most recently freed buffer, the one
// most likely still in cache, as a memory planner reuses a tensor's memory
// soon after its last reader. Taking only the request's own class, a
// layer's output went to a buffer last written a whole run earlier, long
// out of cache: YOLO's first 32x104x104 output (1.4 MB) took 300 us
// against 200 into a buffer in cache. Whole models, paired in one process
// (both orders), against taking the class's own: YOLO 0.97, MobileNetV2
// 0.94, DenseNet 0.93, EfficientNet 0.95-0.96, SqueezeNet 0.97-0.98;
// ResNet-20 and the ViT within 1% (with the free lists in a map, the scan
// over the classes had cost the small models 0.5-1.5%). Fewer buffers
// serve a run (YOLO 40 -> 17, 17.2 -> 10.3 MiB). Reaching 8x (12 classes)
// was 0.5-1% faster still on YOLO but raised calibration's peak on
// stories260K from 37 to 41 MiB at 2 threads. Sessions with taps (the
// tools: calibration, compare, sensitivity) and pools shared between
// sessions keep to the class's own: taps hold buffers and give them back
// in the observers' order, not the graph's, and the most recent buffer was
// then often a larger one than needed, so the pool grew with the samples
// (compare --layerwise on PaddleOCR cls: 58 -> 65 MiB at 20 samples, 60
// -> 72 at 200).
const poolReach = 8

func newBufferPool() *bufferPool {
	return &bufferPool{out: map[unsafe.Pointer]int{}, owner: map[unsafe.Pointer]*graph.Tensor{}}
}

// tensorAt returns a tensor of dt and shape over the n elements at b,
// made in an idle shell when the pool has one, and notes it with b when b
// is a buffer the pool has out (see putShell): as b's own tensor, or with
// view as one of the views over it (Reshape's and the like), which die
// with the buffer as its own tensor does.
func (p *bufferPool) tensorAt(dt graph.DataType, shape []int, b unsafe.Pointer, n int, view bool) (*graph.Tensor, error) {
	t, err := p.shellAt(dt, shape, b, n)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if _, out := p.out[b]; out {
		if view {
			p.views = append(p.views, placedTensor{b, t})
		} else {
			p.owner[b] = t
		}
	}
	p.mu.Unlock()
	return t, nil
}

// shellAt is graph.TensorAt made in an idle shell when the pool has one.
func (p *bufferPool) shellAt(dt graph.DataType, shape []int, b unsafe.Pointer, n int) (*graph.Tensor, error) {
	p.mu.Lock()
	var t *graph.Tensor
	if k := len(p.shells); k > 0 {
		t = p.shells[k-1]
		p.shells[k-1] = nil
		p.shells = p.shells[:k-1]
	}
	p.mu.Unlock()
	if t != nil && graph.ReuseAt(t, dt, shape, b, n) {
		return t, nil
	}
	return graph.TensorAt(dt, shape, b, n)
}

// addShells makes dead tensors shells (tensors shellAt made: others are
// ignored by ReuseAt, and so garbage).
func (p *bufferPool) addShells(ts ...*graph.Tensor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range ts {
		if len(p.shells) < maxShells {
			p.shells = append(p.shells, t)
		}
	}
}

// dropViews forgets the views over b, and with shells makes them shells;
// the caller holds p.mu.
func (p *bufferPool) dropViews(b unsafe.Pointer, shells bool) {
	kept := p.views[:0]
	for _, v := range p.views {
		switch {
		case v.buf != b:
			kept = append(kept, v)
		case shells && len(p.shells) < maxShells:
			p.shells = append(p.shells, v.t)
		}
	}
	clear(p.views[len(kept):])
	p.views = kept
}

// putShell is put for a buffer whose tensors are all dead (no value of the
// run holds one): the tensor tensorAt made on it becomes a shell for the
// next, whichever of its tensors (it, or a view of it) was the last used.
func (p *bufferPool) putShell(b unsafe.Pointer) {
	p.mu.Lock()
	if _, out := p.out[b]; out && !p.pinned[b] {
		if m := p.owner[b]; m != nil && len(p.shells) < maxShells {
			p.shells = append(p.shells, m)
		}
		p.dropViews(b, true)
	}
	p.mu.Unlock()
	p.put(b)
}

// minClass is the smallest buffer in bytes: tiny shape and index tensors share it.
const minClass = 256

// sizeClass rounds n bytes up to the next of 4, 5, 6, 7 (x 2^k) so similar sizes
// share buffers; every class is a multiple of 8 bytes.
func sizeClass(n int) int {
	if n <= minClass {
		return minClass
	}
	shift := bits.Len(uint(n)) - 3 // keep the top three bits
	step := 1 << shift
	return (n + step - 1) / step * step
}

// classIndex numbers the size classes from minClass up: class
// (4..7) << shift is 4*(shift-6) + (4..7) - 4.
func classIndex(c int) int {
	shift := bits.Len(uint(c)) - 3
	return 4*(shift-6) + c>>shift - 4
}

// classAt is the class of index i (classIndex's inverse).
func classAt(i int) int { return (4 + i%4) << (6 + i/4) }

// get returns a buffer of at least n bytes (n > 0), 8-byte aligned, contents undefined.
func (p *bufferPool) get(n int) unsafe.Pointer { return p.getWithin(n, -1) }

// getWithin is get looking at most reach classes above the request's (the
// pool's own reach for -1).
func (p *bufferPool) getWithin(n, reach int) unsafe.Pointer {
	c := sizeClass(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if reach < 0 {
		reach = p.reach
	}
	var b unsafe.Pointer
	i := classIndex(c)
	from, when := -1, uint64(0)
	for j := i; j <= i+reach && j < len(p.free); j++ {
		if l := p.free[j]; len(l) > 0 && (from < 0 || l[len(l)-1].freed > when) {
			from, when = j, l[len(l)-1].freed
		}
	}
	if from >= 0 {
		l := p.free[from]
		b = l[len(l)-1].p
		l[len(l)-1] = idleBuf{}
		p.free[from] = l[:len(l)-1]
		c = classAt(from)
	} else {
		// Words, not bytes: the memory holds no pointers and is aligned for any element type.
		b = unsafe.Pointer(unsafe.SliceData(make([]uint64, c/8)))
		p.made++
	}
	p.out[b] = c
	if poisonBuffers {
		fillBytes(unsafe.Slice((*byte)(b), c), 0xff)
	}
	return b
}

// poisonBuffers, set by tests, fills every buffer the pool hands out with
// 0xff bytes (NaN floats, -1 integers) before a kernel gets it, so that a
// kernel that takes an Empty tensor and leaves an element unwritten shows
// it: a fresh Go allocation is zero, which would pass for a written 0.
var poisonBuffers = false

// fillBytes sets every byte of b to v, doubling copies.
func fillBytes(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for k := 1; k < len(b); k *= 2 {
		copy(b[k:], b[:k])
	}
}

// put takes back a buffer get handed out; anything else is ignored.
func (p *bufferPool) put(b unsafe.Pointer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.out[b]
	if !ok || p.pinned[b] {
		return
	}
	delete(p.out, b)
	delete(p.owner, b)
	p.dropViews(b, false)
	i := classIndex(c)
	for len(p.free) <= i {
		p.free = append(p.free, nil)
	}
	p.puts++
	p.free[i] = append(p.free[i], idleBuf{b, p.puts})
}

// pin keeps put from taking back b until unpin.
func (p *bufferPool) pin(b unsafe.Pointer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pinned == nil {
		p.pinned = map[unsafe.Pointer]bool{}
	}
	p.pinned[b] = true
}

// unpin lets put take back b again.
func (p *bufferPool) unpin(b unsafe.Pointer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pinned, b)
}

// disown forgets buffers that left the session's hands (graph outputs given to
// the caller, a Scratch buffer never released, intermediates of a failed run)
// unless keep says they are coming back: the garbage collector takes them.
func (p *bufferPool) disown(keep map[unsafe.Pointer]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for b := range p.out {
		if !keep[b] {
			delete(p.out, b)
			delete(p.pinned, b)
			delete(p.owner, b)
			p.dropViews(b, false)
		}
	}
}

// forget disowns the given buffers (see disown).
func (p *bufferPool) forget(bufs map[unsafe.Pointer]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for b := range bufs {
		delete(p.out, b)
		delete(p.pinned, b)
		delete(p.owner, b)
		p.dropViews(b, false)
	}
}

// idle is the number of buffers and bytes waiting in the free lists.
func (p *bufferPool) idle() (n, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.free {
		n += len(l)
		bytes += classAt(i) * len(l)
	}
	return n, bytes
}

// tensorBytes views the elements of a tensor whose type the pool holds
// (elemSize not 0) as bytes; nil when it has none.
func tensorBytes(t *graph.Tensor) []byte {
	p, ok := bufKey(t)
	if !ok {
		return nil
	}
	return unsafe.Slice((*byte)(p), t.Len()*elemSize(t.DType))
}

// elemSize is the bytes per element of dt's Go type, 0 where the pool does not hold dt.
func elemSize(dt graph.DataType) int {
	switch dt {
	case graph.Double, graph.Int64, graph.Uint64:
		return 8
	case graph.Float, graph.Int32, graph.Uint32:
		return 4
	case graph.Float16, graph.BFloat16, graph.Int16, graph.Uint16:
		return 2
	case graph.Int8, graph.Int4, graph.Uint8, graph.Uint4, graph.Bool, graph.Float8E4M3FN, graph.Float8E4M3FNUZ,
		graph.Float8E5M2, graph.Float8E5M2FNUZ, graph.Float4E2M1, graph.Float8E8M0:
		return 1
	}
	return 0
}

// Empty returns a tensor whose contents are undefined: the kernel must write
// every element. Without a pool (a kernel run outside a Session), or for
// element types the pool does not hold, it is a zeroed graph.NewTensor.
func (c *Context) Empty(dt graph.DataType, shape []int) *graph.Tensor {
	return c.tensor(dt, shape, false)
}

// New returns a zero-filled tensor like graph.NewTensor, from the pool when the
// kernel runs in a Session.
func (c *Context) New(dt graph.DataType, shape []int) *graph.Tensor {
	return c.tensor(dt, shape, true)
}

// EmptyOutput is Empty for output i of a kernel with several outputs, which
// may then be written in place for a Concat (concat_place.go); Empty in
// such a kernel never is.
func (c *Context) EmptyOutput(i int, dt graph.DataType, shape []int) *graph.Tensor {
	if c != nil {
		if p := c.place.Load(); p != nil && p.out == i && !p.only {
			if t := c.placed(p, dt, shape, false); t != nil {
				return t
			}
		}
	}
	return c.Empty(dt, shape)
}

// placed takes placement p for a tensor of type dt and shape, if it is for
// one; nil if not.
func (c *Context) placed(p *placement, dt graph.DataType, shape []int, zero bool) *graph.Tensor {
	if dt != graph.Float || !slices.Equal(shape, p.shape) || !c.place.CompareAndSwap(p, nil) {
		return nil
	}
	if zero {
		clear(p.data)
	}
	if c.pool == nil { // placements come from a session, which has a pool
		return graph.Float32Tensor(slices.Clone(shape), p.data)
	}
	t, err := c.pool.shellAt(graph.Float, shape, unsafe.Pointer(unsafe.SliceData(p.data)), len(p.data))
	if err != nil {
		panic(err) // offer sized p.data for p.shape, which shape equals
	}
	p.made = t
	return t
}

func (c *Context) tensor(dt graph.DataType, shape []int, zero bool) *graph.Tensor {
	n := graph.Numel(shape)
	size := elemSize(dt)
	if c == nil || c.pool == nil || size == 0 || n <= 0 {
		return graph.NewTensor(dt, shape)
	}
	if p := c.place.Load(); p != nil && p.only {
		if t := c.placed(p, dt, shape, zero); t != nil {
			return t
		}
	}
	b := c.pool.getWithin(n*size, c.reach())
	if zero {
		clear(unsafe.Slice((*byte)(b), n*size))
	}
	t, err := c.pool.tensorAt(dt, shape, b, n, false)
	if err != nil {
		panic(err) // elemSize holds only the types TensorAt wraps, and n fills shape
	}
	return t
}

// reshaped is x viewed in shape (as many elements), its tensor made in one
// of the pool's shells (see bufferPool.tensorAt) when x lies in memory the
// pool can wrap: a Reshape, Flatten, Squeeze or Unsqueeze then makes no
// garbage.
func (c *Context) reshaped(x *graph.Tensor, shape []int) *graph.Tensor {
	if c != nil && c.pool != nil && elemSize(x.DType) > 0 {
		if b, ok := bufKey(x); ok {
			if t, err := c.pool.tensorAt(x.DType, shape, b, x.Len(), true); err == nil {
				return t
			}
		}
	}
	return view(x, shape)
}

// Float32 returns a float32 tensor whose contents are undefined: the kernel must
// write every element. Without a pool (a kernel run outside a Session) it is zeroed.
func (c *Context) Float32(shape []int) *graph.Tensor { return c.Empty(graph.Float, shape) }

// Scratch returns a float32 work buffer of n elements with undefined contents;
// hand it back with Release when done. A nil Context (a kernel run on its
// own) gives a fresh slice.
func (c *Context) Scratch(n int) []float32 {
	if c == nil || c.pool == nil || n <= 0 {
		return make([]float32, n)
	}
	return unsafe.Slice((*float32)(c.pool.getWithin(4*n, c.reach())), n)
}

// seatScratch returns scratch for seats threads' private regions of n
// floats each (seatRegions.at); hand its buf back with Release. On more
// than one seat a gap of seatGap floats lies
// between two regions: on the 2-vCPU Zen 5 VM with its CPUs apart, a thread
// working on a region that lay less than about 1 MiB above the other
// thread's ran slower by up to 1.7x (the stem pool's seat regions of
// 313 KB, contiguous: the upper seat's band 330-350 us, the lower's
// 190-210; 128 KiB apart 290-300, 512 KiB 203-215, 1 MiB and more
// 193-212, whichever thread held the upper region), as if the lower
// region's thread fetched ahead into it. The gap is address space: no
// thread touches it.
func (c *Context) seatScratch(seats, n int) seatRegions {
	if seats <= 0 || n <= 0 {
		return seatRegions{}
	}
	stride := n
	if seats > 1 {
		stride = n + seatGap
	}
	return seatRegions{buf: c.Scratch((seats-1)*stride + n), stride: stride, n: n}
}

// seatRegions is scratch holding a region of n floats for each seat of a
// loop, stride floats apart (Context.seatScratch); the zero value holds
// none.
type seatRegions struct {
	buf       []float32
	stride, n int
}

// at is seat s's region (nil when there are none).
func (r seatRegions) at(s int) []float32 { return r.buf[s*r.stride : s*r.stride+r.n] }

// seatGap is the distance in floats (1 MiB) that seatScratch leaves between
// two seats' regions; a variable for the benchmarks that compare.
var seatGap = 1 << 18

// ScratchInts is Scratch for n ints: index lists computed on every run (a
// Gather's indices, 2401 of them for a Swin window's position bias).
func (c *Context) ScratchInts(n int) []int {
	if c == nil || c.pool == nil || n <= 0 {
		return make([]int, n)
	}
	return unsafe.Slice((*int)(c.pool.getWithin(8*n, c.reach())), n)
}

// ReleaseInts returns a ScratchInts buffer.
func (c *Context) ReleaseInts(b []int) { c.release(unsafe.Pointer(unsafe.SliceData(b)), cap(b)) }

// Release returns a Scratch buffer.
func (c *Context) Release(b []float32) { c.release(unsafe.Pointer(unsafe.SliceData(b)), cap(b)) }

// release gives back a scratch buffer at p of capacity n (none when 0).
func (c *Context) release(p unsafe.Pointer, n int) {
	if c != nil && c.pool != nil && n > 0 {
		c.pool.put(p)
	}
}

// recycleTemp gives a kernel's own pool tensor back before the step ends
// (a temporary, a loop's replaced state); others are ignored.
func recycleTemp(ctx *Context, t *graph.Tensor) {
	if k, ok := bufKey(t); ok && ctx != nil && ctx.pool != nil {
		ctx.pool.put(k)
	}
}

// bufKey identifies a tensor's backing array (views share it).
func bufKey(t *graph.Tensor) (unsafe.Pointer, bool) {
	if t == nil || !t.Loaded() {
		return nil, false
	}
	var p unsafe.Pointer
	switch d := t.Data().(type) {
	case []float32:
		if cap(d) == 0 {
			return nil, false
		}
		p = unsafe.Pointer(unsafe.SliceData(d))
	case []int64:
		if cap(d) == 0 {
			return nil, false
		}
		p = unsafe.Pointer(unsafe.SliceData(d))
	default:
		v := reflect.ValueOf(d)
		if v.Kind() != reflect.Slice || v.Cap() == 0 {
			return nil, false
		}
		p = v.UnsafePointer()
	}
	return p, true
}
