package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// attrs reads a node's attributes, keeping the first error so factories can read
// everything and check once.
type attrs struct {
	n   *graph.Node
	err error
}

func attrsOf(n *graph.Node) *attrs { return &attrs{n: n} }

func (a *attrs) keep(err error) {
	if a.err == nil && err != nil {
		a.err = err
	}
}

func (a *attrs) Int(name string, def int64) int64 {
	v, err := a.n.AttrInt(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Float(name string, def float32) float32 {
	v, err := a.n.AttrFloat(name, def)
	a.keep(err)
	return v
}

func (a *attrs) String(name, def string) string {
	v, err := a.n.AttrString(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Ints(name string, def []int64) []int64 {
	v, err := a.n.AttrInts(name, def)
	a.keep(err)
	return v
}

func (a *attrs) Floats(name string, def []float32) []float32 {
	v, err := a.n.AttrFloats(name, def)
	a.keep(err)
	return v
}

// parallelFor runs f over contiguous chunks of [0, n) on up to threads
// goroutines of the shared pool (kernels/parallel), waiting for all. There are
// a few chunks per thread, claimed as threads come free, so a thread that
// the OS delays (a loaded machine) leaves its share to the others.
func parallelFor(threads, n int, f func(lo, hi int)) {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	chunks := min(n, chunksPerThread*threads)
	parallel.For(threads, chunks, func(i int) {
		f(i*n/chunks, (i+1)*n/chunks)
	})
}

// chunksPerThread balances load against per-chunk setup (scratch buffers).
const chunksPerThread = 4

// threadsFor limits parallelism so each thread gets at least minWork units.
func threadsFor(ctx *Context, work, minWork int) int {
	if ctx == nil { // a one-off outside a session's run
		return 1
	}
	return parallel.Split(ctx.Threads, work, minWork)
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// broadcastShape is the numpy-style broadcast of shapes.
func broadcastShape(shapes ...[]int) ([]int, error) {
	return broadcastShapeInto(nil, shapes...)
}

// broadcastShapeInto is broadcastShape in dst's array when it has room (a
// caller's array on its stack: shapes are computed on every run).
func broadcastShapeInto(dst []int, shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := dst[:0]
	for range rank {
		out = append(out, 1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch {
			case out[off+i] == d || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, broadcastError(shapes)
			}
		}
	}
	return out, nil
}

// broadcastError says which shapes do not broadcast, from copies: shapes
// given to fmt would move the callers' arrays to the heap.
func broadcastError(shapes [][]int) error {
	c := make([][]int, len(shapes))
	for i, s := range shapes {
		c[i] = slices.Clone(s)
	}
	return fmt.Errorf("shapes %v cannot be broadcast together", c)
}

// bcastStrides returns element strides of a tensor of shape s viewed as the
// broadcast shape out (0 along broadcast dimensions).
func bcastStrides(s, out []int) []int {
	st := make([]int, len(out))
	off := len(out) - len(s)
	stride := 1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 1 {
			st[off+i] = stride
		}
		stride *= s[i]
	}
	return st
}

// mergeDims prepares a walk of the shape out with the given element
// strides per operand: axes of size 1 move no offset and are dropped (their
// strides, 0 for a broadcast input, would keep the axes around them from
// merging: Tile's [1, d0, 1, d1, ...] views), then axes i and i+1 merge
// when every operand has stride[i] == stride[i+1]*out[i+1].
func mergeDims(out []int, strides [][]int) (dims []int, st [][]int) {
	// One backing array for the dimensions and every input's strides:
	// appending to each from nil was a handful of allocations per call.
	r := len(out)
	buf := make([]int, (1+len(strides))*r)
	dims = buf[:0:r]
	st = make([][]int, len(strides))
	for k := range st {
		st[k] = buf[(1+k)*r : (1+k)*r : (2+k)*r]
	}
	for i, d := range out {
		if d == 1 {
			continue
		}
		dims = append(dims, d)
		for k := range strides {
			st[k] = append(st[k], strides[k][i])
		}
	}
	for i := len(dims) - 2; i >= 0; i-- {
		ok := true
		for k := range st {
			if st[k][i] != st[k][i+1]*dims[i+1] {
				ok = false
				break
			}
		}
		if ok {
			dims[i] *= dims[i+1]
			dims = append(dims[:i+1], dims[i+2:]...)
			for k := range st {
				st[k] = append(st[k][:i], st[k][i+1:]...)
			}
		}
	}
	return dims, st
}

// bcastIter walks the broadcast shape out in row-major order, calling f with the
// offsets of each input for every run of the innermost dimension. Adjacent
// dimensions with compatible strides are merged first, so same-shape and
// scalar cases become one long run.
func bcastIter(out []int, strides [][]int, f func(offs []int, n int, inner []int)) {
	dims, st := mergeDims(out, strides)
	rank := len(dims)
	offs := make([]int, len(st))
	if rank == 0 {
		f(offs, 1, make([]int, len(st)))
		return
	}
	inner := make([]int, len(st))
	for k := range st {
		inner[k] = st[k][rank-1]
	}
	n := dims[rank-1]
	if n == 0 {
		return
	}
	idx := make([]int, rank-1)
	outer := 1
	for _, d := range dims[:rank-1] {
		outer *= d
	}
	for o := 0; o < outer; o++ {
		f(offs, n, inner)
		// advance the outer index
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			for k := range st {
				offs[k] += st[k][d]
			}
			if idx[d] < dims[d] {
				break
			}
			for k := range st {
				offs[k] -= st[k][d] * dims[d]
			}
			idx[d] = 0
		}
	}
}

// parallelIter is bcastIter with threads taking ranges of the first
// dimension of out longer than 1; f must be safe to call concurrently.
func parallelIter(threads int, out []int, strides [][]int, f func(offs []int, n int, inner []int)) {
	r := len(out)
	if threads <= 1 || r == 0 {
		bcastIter(out, strides, f)
		return
	}
	d0 := 0
	for d0 < r-1 && out[d0] == 1 {
		d0++
	}
	parallelFor(threads, out[d0], func(lo, hi int) {
		sub := slices.Clone(out)
		sub[d0] = hi - lo
		base := make([]int, len(strides))
		for k := range strides {
			base[k] = lo * strides[k][d0]
		}
		shifted := make([]int, len(strides))
		bcastIter(sub, strides, func(offs []int, n int, inner []int) {
			for k := range offs {
				shifted[k] = base[k] + offs[k]
			}
			f(shifted, n, inner)
		})
	})
}

// minStreamWork is the fewest elements per thread for an op that only
// streams memory (elementwise arithmetic, Transpose, Expand, Where). Left on
// one thread in a 2-thread session, such an op reads the half of its input
// that the other thread has just written, from that core's cache, and
// writes pool buffers last written there: on stories260K at 2 threads its
// Adds, Expands, Transposes and Where took 1.2-2.4x their 1-thread time.
// Split, each thread mostly finds its half where it wrote it (see
// kernels/parallel on spans).
const minStreamWork = 1 << 12

// ints converts an int64 tensor (or int32) to []int.
func ints(t *graph.Tensor) ([]int, error) { return intsInto(nil, t) }

// intsInto is ints appended to dst (a caller's array on its stack: shape
// and axes inputs are read on every run).
func intsInto(dst []int, t *graph.Tensor) ([]int, error) {
	switch d := t.Data().(type) {
	case []int64:
		for _, v := range d {
			dst = append(dst, int(v))
		}
		return dst, nil
	case []int32:
		for _, v := range d {
			dst = append(dst, int(v))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("expected an int64 tensor, got %s", t.DType.Short())
}

// toInt64s converts a []int64 attribute to []int.
func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// need checks a kernel got at least n non-nil inputs among the first n.
func need(in []*graph.Tensor, n int) error {
	if len(in) < n {
		return fmt.Errorf("expected %d inputs, got %d", n, len(in))
	}
	for i := 0; i < n; i++ {
		if in[i] == nil {
			return fmt.Errorf("input %d is required", i)
		}
	}
	return nil
}

// wantFloat checks t is float32.
func wantFloat(t *graph.Tensor, what string) error {
	if t.DType != graph.Float {
		return fmt.Errorf("%s must be float32, got %s", what, t.DType.Short())
	}
	return nil
}

func one(t *graph.Tensor) []*graph.Tensor { return []*graph.Tensor{t} }

// strides returns row-major strides of a shape.
func stridesOf(shape []int) []int { return stridesInto(make([]int, 0, len(shape)), shape) }

// stridesInto is stridesOf appended to dst (a caller's array on its stack).
func stridesInto(dst, shape []int) []int {
	dst = append(dst, shape...)
	s := 1
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i], s = s, s*dst[i]
	}
	return dst
}
