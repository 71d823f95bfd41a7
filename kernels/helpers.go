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
	walkRuns(make([]int, walkState(dims, st)), dims, st, 1, 0, runsOf(dims), f)
}

// walkState is how many ints walkRuns keeps its state in: the offsets,
// inner strides and a piece's offsets of each operand, and the index. A
// walk keeps them in one allocation (f may keep the slices it is given, so
// they cannot live on the stack) and a parallel walk in one for all its
// seats, where a walk used to make four and a parallel one three more for
// each of its chunks (EfficientNet's squeeze-excitation Muls at 2 threads:
// 1219 allocations a run, 356 at 1 thread).
func walkState(dims []int, st [][]int) int { return 3*len(st) + max(0, len(dims)-1) }

// runsOf is how many runs of the innermost dimension merged dims have: the
// product of the others (1 for rank 0 and 1).
func runsOf(dims []int) int {
	runs := 1
	for _, d := range dims[:max(0, len(dims)-1)] {
		runs *= d
	}
	return runs
}

// walkRuns calls f for runs [r0, r1) of the walk over merged dims with
// strides st, its state in buf (walkState ints), each run of the innermost
// dimension cut into pieces even pieces (a walk item is one piece: item r
// is piece r%pieces of run r/pieces), in row-major order.
func walkRuns(buf, dims []int, st [][]int, pieces, r0, r1 int, f func(offs []int, n int, inner []int)) {
	k, rank := len(st), len(dims)
	clear(buf)
	offs, inner, piece, idx := buf[:k], buf[k:2*k], buf[2*k:3*k], buf[3*k:]
	if rank == 0 {
		if r0 < r1 {
			f(offs, 1, inner)
		}
		return
	}
	n := dims[rank-1]
	if n == 0 || r0 >= r1 {
		return
	}
	for i := range st {
		inner[i] = st[i][rank-1]
	}
	// The index of the first run, and its offsets.
	rem := r0 / pieces
	for d := rank - 2; d >= 0; d-- {
		idx[d] = rem % dims[d]
		rem /= dims[d]
		for i := range st {
			offs[i] += idx[d] * st[i][d]
		}
	}
	for r := r0; r < r1; r++ {
		if pieces == 1 {
			f(offs, n, inner)
		} else {
			p := r % pieces
			a, b := p*n/pieces, (p+1)*n/pieces
			for i := range offs {
				piece[i] = offs[i] + a*inner[i]
			}
			if a < b {
				f(piece, b-a, inner)
			}
			if p != pieces-1 {
				continue
			}
		}
		// The next run: advance the outer index.
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			for i := range st {
				offs[i] += st[i][d]
			}
			if idx[d] < dims[d] {
				break
			}
			for i := range st {
				offs[i] -= st[i][d] * dims[d]
			}
			idx[d] = 0
		}
	}
}

// parallelIter is bcastIter with threads taking ranges of its runs; where
// there are fewer runs than chunks to share (one long run: same shapes, a
// scalar operand), the runs are cut into pieces. f must be safe to call
// concurrently.
func parallelIter(threads int, out []int, strides [][]int, f func(offs []int, n int, inner []int)) {
	dims, st := mergeDims(out, strides)
	runs := runsOf(dims)
	if threads <= 1 || len(dims) == 0 {
		walkRuns(make([]int, walkState(dims, st)), dims, st, 1, 0, runs, f)
		return
	}
	if runs == 0 || dims[len(dims)-1] == 0 { // an empty tensor
		return
	}
	pieces := 1
	if want := chunksPerThread * threads; runs < want {
		pieces = max(1, min(dims[len(dims)-1], (want+runs-1)/runs))
	}
	items := runs * pieces
	chunks := min(items, chunksPerThread*threads)
	// Each seat's state a cache line or more from the next's: a walk
	// writes its offsets at every run.
	size := walkState(dims, st)
	stride := (size + 15) &^ 7
	bufs := make([]int, threads*stride)
	parallel.ForSeat(threads, chunks, func(seat, c int) {
		walkRuns(bufs[seat*stride:seat*stride+size], dims, st, pieces, c*items/chunks, (c+1)*items/chunks, f)
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
