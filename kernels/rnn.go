package kernels

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// RNN, GRU and LSTM in float32. The input projection X·W^T of every time step
// and direction is one GEMM before the recurrence; each step then adds h·R^T
// (a GEMM on R packed once, or a matrix-vector product per row when the batch
// is too small to fill a micro-kernel tile) and applies the gate activations a whole gate
// vector at a time. Layouts follow ONNX: X [seq, batch, input] (layout 0) or
// [batch, seq, input] (layout 1).

type rnnKind int

const (
	kindRNN rnnKind = iota
	kindGRU
	kindLSTM
)

func (k rnnKind) gates() int { return [...]int{1, 3, 4}[k] }

// rnnAct is one activation of the ONNX recurrent ops, with its alpha and beta.
type rnnAct struct {
	name        string // lower case
	alpha, beta float32
}

func newRNNAct(name string, alpha, beta float32) (rnnAct, error) {
	a := rnnAct{strings.ToLower(name), alpha, beta}
	switch a.name {
	case "sigmoid", "tanh", "relu", "leakyrelu", "thresholdedrelu", "scaledtanh",
		"hardsigmoid", "elu", "softsign", "softplus":
		return a, nil
	}
	return a, fmt.Errorf("activation %q is not supported", name)
}

// apply sets dst = f(src); dst and src may alias.
func (a rnnAct) apply(dst, src []float32) {
	switch a.name {
	case "sigmoid":
		vec.Sigmoid(dst, src)
	case "tanh":
		vec.Tanh(dst, src)
	case "relu":
		for i, v := range src {
			dst[i] = max(0, v)
		}
	case "leakyrelu":
		for i, v := range src {
			if v < 0 {
				v *= a.alpha
			}
			dst[i] = v
		}
	case "thresholdedrelu":
		for i, v := range src {
			if !(v > a.alpha) {
				v = 0
			}
			dst[i] = v
		}
	case "scaledtanh":
		vec.MulScalar(dst, src, a.beta)
		vec.Tanh(dst, dst)
		vec.MulScalar(dst, dst, a.alpha)
	case "hardsigmoid":
		vec.Affine(dst, src, a.alpha, a.beta)
		vec.Clip(dst, dst, 0, 1)
	case "elu":
		vec.Elu(dst, src, a.alpha)
	case "softsign":
		for i, v := range src {
			dst[i] = v / (1 + abs32(v))
		}
	case "softplus":
		vec.Softplus(dst, src)
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// defaultAlphaBeta are the ONNX defaults of the parameterized activations.
func defaultAlphaBeta(name string) (float64, float64) {
	switch strings.ToLower(name) {
	case "leakyrelu":
		return 0.01, 0
	case "thresholdedrelu", "elu":
		return 1, 0
	case "scaledtanh":
		return 1, 1
	case "hardsigmoid":
		return 0.2, 0.5
	}
	return 0, 0
}

// recMat is one block of columns of R^T (hidden x n) for one direction, in the
// two forms the step product uses.
type recMat struct {
	n, hidden int
	packed    *gemm.PackedB
	// blocks is R^T for the matrix-vector path in column blocks of
	// recBlock, each hidden x recBlock row-major and the last as wide as is
	// left: a block's rows are contiguous, where R^T row-major put them 4n
	// bytes apart (an LSTM with 256 hidden units: a 4 KiB stride through
	// 1 MiB a step, which the prefetchers did not follow; survey LSTM
	// bidirectional seq100 h256 1.50 -> 0.96 of ORT's time).
	blocks []float32
}

// recBlock is the width of recMat's column blocks: the matrix-vector
// kernel's 64 columns in registers.
const recBlock = 64

// gemvRows is the batch below which a step's h·R^T runs as one matrix-vector
// product per batch row: a GEMM micro-kernel tile of 6 or 12 rows would mostly
// compute padding.
const gemvRows = 4

func newRecMat(r []float32, hidden, n int) recMat {
	// r holds n rows of R, each hidden wide; R^T is hidden x n.
	m := recMat{n: n, hidden: hidden, packed: gemm.PackB(hidden, n, gemm.Matrix{Data: r, Stride: hidden, Trans: true})}
	m.blocks = make([]float32, hidden*n)
	for j0 := 0; j0 < n; j0 += recBlock {
		w := min(recBlock, n-j0)
		blk := m.blocks[j0*hidden : j0*hidden+w*hidden]
		for i := 0; i < hidden; i++ {
			for j := 0; j < w; j++ {
				blk[i*w+j] = r[(j0+j)*hidden+i]
			}
		}
	}
	return m
}

// mulAddCols sets y[j-lo] += x · R^T[:, j] for the columns j in [lo, hi),
// a block's part at a time.
func (m *recMat) mulAddCols(y, x []float32, lo, hi int) {
	for lo < hi {
		j0 := lo / recBlock * recBlock
		w := min(recBlock, m.n-j0)
		e := min(hi, j0+w)
		vec.MulAddT(y[:e-lo], x, m.blocks[j0*m.hidden+lo-j0:], w)
		y, lo = y[e-lo:], e
	}
}

// mulAdd sets out[b, 0:n] += in[b, :] · R^T for each of the batch rows; out
// rows are ldo apart.
func (m *recMat) mulAdd(in []float32, batch, hidden int, out []float32, ldo int) {
	if batch >= gemvRows {
		gemm.MulPackedB(batch, 1, gemm.Matrix{Data: in, Stride: hidden}, m.packed, 1, out, ldo, 1)
		return
	}
	for b := 0; b < batch; b++ {
		m.mulAddCols(out[b*ldo:b*ldo+m.n], in[b*hidden:(b+1)*hidden], 0, m.n)
	}
}

// rnnWeights are W packed for the input projection and R split per direction.
type rnnWeights struct {
	w   *gemm.PackedB // input x (dirs*gates*hidden)
	rec [][]recMat    // per direction: one block (RNN, LSTM) or z|r and h (GRU)
}

type recurrentKernel struct {
	kind              rnnKind
	hidden            int
	dirs              int
	reverse           bool // direction "reverse"
	clip              float32
	layout            int64
	linearBeforeReset bool
	inputForget       bool
	acts              []rnnAct // per direction: f (RNN), f g (GRU), f g h (LSTM)
	wConst, rConst    *graph.Tensor
	packed            *rnnWeights // when W and R are constant float32
	// quantized: DynamicQuantizeLSTM (rnn_dq.go), whose W and R are 8-bit
	// codes, transposed, with scales and zero points in inputs 8 to 11.
	quantized bool
	qconst    bool // W, R and their scales and zero points are constants
	qcache    atomic.Pointer[lstmQuantCache]
}

func newRecurrent(kind rnnKind) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		k := &recurrentKernel{
			kind:              kind,
			hidden:            int(a.Int("hidden_size", 0)),
			clip:              a.Float("clip", 0),
			layout:            a.Int("layout", 0),
			linearBeforeReset: a.Int("linear_before_reset", 0) != 0,
			inputForget:       a.Int("input_forget", 0) != 0,
			dirs:              1,
		}
		direction := a.String("direction", "forward")
		names, err := ni.Node.AttrStrings("activations", nil)
		if err != nil {
			return nil, err
		}
		alphas := a.Floats("activation_alpha", nil)
		betas := a.Floats("activation_beta", nil)
		if a.err != nil {
			return nil, a.err
		}
		switch direction {
		case "forward":
		case "reverse":
			k.reverse = true
		case "bidirectional":
			k.dirs = 2
		default:
			return nil, fmt.Errorf("unknown direction %q", direction)
		}
		if k.layout != 0 && k.layout != 1 {
			return nil, fmt.Errorf("layout must be 0 or 1, got %d", k.layout)
		}
		if k.clip < 0 {
			return nil, fmt.Errorf("clip must not be negative, got %g", k.clip)
		}
		per := [...]int{1, 2, 3}[kind] // activations per direction
		if names == nil {
			def := [...][]string{{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}}[kind]
			for d := 0; d < k.dirs; d++ {
				names = append(names, def...)
			}
		}
		if len(names) != per*k.dirs {
			return nil, fmt.Errorf("%d activations given, need %d", len(names), per*k.dirs)
		}
		// activation_alpha and activation_beta list values for the parameterized
		// activations only, in order.
		ai := 0
		for _, n := range names {
			alpha, beta := defaultAlphaBeta(n)
			switch strings.ToLower(n) {
			case "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu":
				if ai < len(alphas) {
					alpha = float64(alphas[ai])
				}
				if ai < len(betas) {
					beta = float64(betas[ai])
				}
				ai++
			}
			act, err := newRNNAct(n, float32(alpha), float32(beta))
			if err != nil {
				return nil, err
			}
			k.acts = append(k.acts, act)
		}
		k.wConst, k.rConst = ni.Const(1), ni.Const(2)
		if w, r := k.wConst, k.rConst; w != nil && r != nil && w.DType == graph.Float && r.DType == graph.Float && w.Rank() == 3 && r.Rank() == 3 {
			hs, isz := r.Shape[2], w.Shape[2]
			if k.checkWeights(w, r, hs, isz) == nil {
				k.packed = k.pack(w.Float32s(), r.Float32s(), hs, isz)
			}
		}
		return k, nil
	}
}

func (k *recurrentKernel) checkWeights(w, r *graph.Tensor, hs, isz int) error {
	g := k.kind.gates()
	if k.hidden != 0 && hs != k.hidden {
		return fmt.Errorf("R %v does not fit hidden_size %d", r.Shape, k.hidden)
	}
	if !slices.Equal(w.Shape, []int{k.dirs, g * hs, isz}) || !slices.Equal(r.Shape, []int{k.dirs, g * hs, hs}) {
		return fmt.Errorf("W %v / R %v do not fit %d directions, hidden %d, input %d", w.Shape, r.Shape, k.dirs, hs, isz)
	}
	return nil
}

func (k *recurrentKernel) pack(w, r []float32, hs, isz int) *rnnWeights {
	g := k.kind.gates()
	p := &rnnWeights{w: gemm.PackB(isz, k.dirs*g*hs, gemm.Matrix{Data: w, Stride: isz, Trans: true})}
	for d := 0; d < k.dirs; d++ {
		rd := r[d*g*hs*hs : (d+1)*g*hs*hs]
		if k.kind == kindGRU {
			// z and r gates take h; the hidden gate takes r⊙h (or h, after
			// linear_before_reset), so it is a separate product.
			p.rec = append(p.rec, []recMat{newRecMat(rd[:2*hs*hs], hs, 2*hs), newRecMat(rd[2*hs*hs:], hs, hs)})
		} else {
			p.rec = append(p.rec, []recMat{newRecMat(rd, hs, g*hs)})
		}
	}
	return p
}

// float32sOf returns t's values as float32 (a copy unless t is float32).
func float32sOf(t *graph.Tensor, what string) ([]float32, error) {
	if t.DType == graph.Float {
		return t.Float32s(), nil
	}
	v, err := t.AsFloat32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

func (k *recurrentKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	opt := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	x, w, r := in[0], in[1], in[2]
	if x.Rank() != 3 || w.Rank() != 3 || r.Rank() != 3 {
		return nil, fmt.Errorf("X, W and R must be 3-D, got %v, %v and %v", x.Shape, w.Shape, r.Shape)
	}
	seq, batch, isz := x.Shape[0], x.Shape[1], x.Shape[2]
	if k.layout == 1 {
		seq, batch = batch, seq
	}
	g, dirs := k.kind.gates(), k.dirs
	hs := r.Shape[2]
	var q *lstmQuant
	if k.quantized {
		var qi int
		var err error
		if q, hs, qi, err = k.lstmQuant(in, dirs); err != nil {
			return nil, err
		}
		if qi != isz {
			return nil, fmt.Errorf("W %v does not fit X %v", w.Shape, x.Shape)
		}
	} else if err := k.checkWeights(w, r, hs, isz); err != nil {
		return nil, err
	}
	gh := g * hs
	xv, err := float32sOf(x, "X")
	if err != nil {
		return nil, err
	}
	p := k.packed
	if q != nil {
		p = &rnnWeights{rec: make([][]recMat, dirs)}
	} else if p == nil || w != k.wConst || r != k.rConst {
		wv, err := float32sOf(w, "W")
		if err != nil {
			return nil, err
		}
		rv, err := float32sOf(r, "R")
		if err != nil {
			return nil, err
		}
		p = k.pack(wv, rv, hs, isz)
	}
	// Bias of the input projection: Wb + Rb, except the GRU hidden gate's Rb
	// under linear_before_reset, which is scaled by r with the recurrent part.
	bx := make([]float32, dirs*gh)
	var rbh []float32 // GRU with linear_before_reset: Rb_h per direction
	if k.kind == kindGRU && k.linearBeforeReset {
		rbh = make([]float32, dirs*hs)
	}
	if t := opt(3); t != nil {
		bv, err := float32sOf(t, "B")
		if err != nil {
			return nil, err
		}
		if len(bv) != dirs*2*gh {
			return nil, fmt.Errorf("B %v does not fit %d directions of %d gates, hidden %d", t.Shape, dirs, g, hs)
		}
		for d := 0; d < dirs; d++ {
			wb, rb := bv[d*2*gh:d*2*gh+gh], bv[d*2*gh+gh:(d+1)*2*gh]
			for j := range wb {
				if rbh != nil && j >= 2*hs {
					bx[d*gh+j] = wb[j]
					rbh[d*hs+j-2*hs] = rb[j]
					continue
				}
				bx[d*gh+j] = wb[j] + rb[j]
			}
		}
	}
	lens := make([]int, batch)
	for b := range lens {
		lens[b] = seq
	}
	if t := opt(4); t != nil {
		v, err := ints(t)
		if err != nil {
			return nil, err
		}
		if len(v) != batch {
			return nil, fmt.Errorf("sequence_lens has %d values for batch %d", len(v), batch)
		}
		for b, n := range v {
			if n < 0 || n > seq {
				return nil, fmt.Errorf("sequence_lens[%d] = %d is outside [0, %d]", b, n, seq)
			}
		}
		lens = v
	}
	state := func(i int, what string) ([]float32, error) {
		t := opt(i)
		if t == nil {
			return nil, nil
		}
		v, err := float32sOf(t, what)
		if err == nil && len(v) != dirs*batch*hs {
			err = fmt.Errorf("%s %v does not fit %d directions, batch %d, hidden %d", what, t.Shape, dirs, batch, hs)
		}
		return v, err
	}
	h0, err := state(5, "initial_h")
	if err != nil {
		return nil, err
	}
	var c0, pv []float32
	if k.kind == kindLSTM {
		if c0, err = state(6, "initial_c"); err != nil {
			return nil, err
		}
		if t := opt(7); t != nil {
			if pv, err = float32sOf(t, "P"); err != nil {
				return nil, err
			}
			if len(pv) != dirs*3*hs {
				return nil, fmt.Errorf("P %v does not fit %d directions, hidden %d", t.Shape, dirs, hs)
			}
		}
	}

	// The input projection of all steps and directions as one GEMM; the bias
	// is added as each step reads its row.
	rows := seq * batch
	gx := ctx.Scratch(rows * dirs * gh)
	defer ctx.Release(gx)
	if q != nil {
		for d := range dirs {
			// ORT projects (and so quantizes) the steps up to the longest
			// sequence only.
			qrows := rows
			if k.layout == 0 {
				qrows = slices.Max(lens) * batch
			}
			q.w[d].product(ctx, xv, qrows, isz, gh, gx[d*gh:], dirs*gh, false)
		}
	} else {
		gemm.MulPackedB(rows, 1, gemm.Matrix{Data: xv, Stride: isz}, p.w, 0, gx, dirs*gh, ctx.Threads)
	}

	yShape := []int{seq, dirs, batch, hs}
	stShape := []int{dirs, batch, hs}
	if k.layout == 1 {
		yShape, stShape = []int{batch, seq, dirs, hs}, []int{batch, dirs, hs}
	}
	// float32 results go straight into the outputs; other types through a
	// copy. An RNN and a GRU have no cell state: its buffer is scratch.
	shapes := [][]int{yShape, stShape, stShape}
	outs := make([]*graph.Tensor, 3)
	vals := make([][]float32, 3)
	for i, shape := range shapes {
		if i == 2 && k.kind != kindLSTM {
			vals[i] = ctx.Scratch(graph.Numel(shape))
			defer ctx.Release(vals[i])
			clear(vals[i])
			continue
		}
		if x.DType == graph.Float {
			outs[i] = ctx.Float32(shape)
			vals[i] = outs[i].Float32s()
			clear(vals[i]) // Y stays zero past each row's sequence length
		} else {
			outs[i] = graph.NewTensor(x.DType, shape)
			vals[i] = make([]float32, graph.Numel(shape))
		}
	}
	// Directions run on threads of their own; threads left over split each
	// step of a direction (see unitParts).
	dirThreads := parallel.Split(ctx.Threads, dirs, 1)
	var qr func(d, s int, h []float32, gates []float32)
	if q != nil {
		// The quantized products take the context's threads themselves.
		dirThreads = 1
		// The rows past their sequence's end enter the product as zeros,
		// as ORT feeds them (it zeroes their outputs, which are the next
		// step's h): they count in the range h is quantized with.
		hq := make([]float32, batch*hs)
		qr = func(d, s int, h, gates []float32) {
			copy(hq, h)
			for b, n := range lens {
				if s > n {
					clear(hq[b*hs : (b+1)*hs])
				}
			}
			q.r[d].product(ctx, hq, batch, hs, gh, gates, gh, true)
		}
	}
	stepThreads := max(1, ctx.Threads/dirThreads)
	run := func(d int) {
		k.direction(d, p.rec[d], qr, gx, bx[d*gh:(d+1)*gh], seq, batch, hs, lens, h0, c0, pv, rbh, vals[0], vals[1], vals[2], stepThreads)
	}
	parallel.For(dirThreads, dirs, run)
	if k.kind != kindLSTM {
		outs = outs[:2]
	}
	if x.DType != graph.Float {
		for i, o := range outs {
			if err := storeFloat32s(o, vals[i]); err != nil {
				return nil, err
			}
		}
	}
	return outs, nil
}

// cell runs the elementwise part of an RNN or LSTM step on hidden units
// [u0, u1) of one batch row: gb holds the row's gate pre-activations (the
// projected input plus h·R^T, gates side by side), cb its cell state
// (LSTM), updated in place, and hb receives the new hidden state; tmp is
// scratch as wide as a gate, pi, po and pf the peepholes or nil. Units are
// independent here, so threads can each take a range.
func (k *recurrentKernel) cell(gb, hb, cb, tmp, pi, po, pf []float32, f []rnnAct, clip func([]float32), u0, u1 int) {
	hs := len(hb)
	if k.kind == kindRNN {
		clip(gb[u0:u1])
		f[0].apply(hb[u0:u1], gb[u0:u1])
		return
	}
	// LSTM: gates i, o, f, c.
	gi, gO, gf, gc := gb[u0:u1], gb[hs+u0:hs+u1], gb[2*hs+u0:2*hs+u1], gb[3*hs+u0:3*hs+u1]
	hb, cb, tmp = hb[u0:u1], cb[u0:u1], tmp[u0:u1]
	if pi != nil {
		pi, po, pf = pi[u0:u1], po[u0:u1], pf[u0:u1]
		vec.Mul(tmp, pi, cb)
		vec.Add(gi, gi, tmp)
		vec.Mul(tmp, pf, cb)
		vec.Add(gf, gf, tmp)
	}
	clip(gi)
	f[0].apply(gi, gi)
	if k.inputForget {
		vec.Affine(gf, gi, -1, 1)
	} else {
		clip(gf)
		f[0].apply(gf, gf)
	}
	clip(gc)
	f[1].apply(gc, gc)
	// c' = f⊙c + i⊙g
	vec.Mul(cb, cb, gf)
	vec.Mul(tmp, gi, gc)
	vec.Add(cb, cb, tmp)
	if pi != nil {
		vec.Mul(tmp, po, cb)
		vec.Add(gO, gO, tmp)
	}
	clip(gO)
	f[0].apply(gO, gO)
	f[2].apply(tmp, cb)
	vec.Mul(hb, gO, tmp)
}

// gruCell runs the elementwise part of a GRU step (gates z, r, h in gb) on
// hidden units [u0, u1) of one batch row: under linear_before_reset it
// activates z and r and adds r⊙aux (R_h·h + Rb_h) to the hidden gate (else
// z and r are active already and the hidden gate holds R_h·(r⊙h)), then
// hOut = hh + z⊙(hIn - hh). hOut may be hIn; tmp is scratch as wide as a gate.
func (k *recurrentKernel) gruCell(gb, hIn, hOut, aux, tmp []float32, f []rnnAct, clip func([]float32), u0, u1 int) {
	hs := len(hIn)
	z, rr, hh := gb[u0:u1], gb[hs+u0:hs+u1], gb[2*hs+u0:2*hs+u1]
	tmp = tmp[u0:u1]
	if k.linearBeforeReset {
		clip(z)
		f[0].apply(z, z)
		clip(rr)
		f[0].apply(rr, rr)
		vec.Mul(tmp, rr, aux[u0:u1])
		vec.Add(hh, hh, tmp)
	}
	clip(hh)
	f[1].apply(hh, hh)
	// h' = (1-z)⊙hh + z⊙h = hh + z⊙(h - hh)
	copy(tmp, hIn[u0:u1])
	vec.Axpy(tmp, hh, -1)
	vec.Mul(tmp, tmp, z)
	vec.Add(hOut[u0:u1], hh, tmp)
}

// unitParts is how many parts the hidden units of each step of one
// direction split into across threads, and the units per part (a multiple
// of 8, the width the matrix-vector product takes in registers): 1 where a
// step is too small to pay for a parallel region of its own, where batches
// take the GEMM path, and for a GRU without linear_before_reset, whose
// hidden gate multiplies r⊙h of every unit. A step of an LSTM with 128
// hidden units (65K multiply-adds) then takes two threads, each its units'
// four gate rows.
func (k *recurrentKernel) unitParts(threads, batch, hs int) (parts, per int) {
	if k.kind == kindGRU && !k.linearBeforeReset || batch >= gemvRows {
		return 1, hs
	}
	parts = parallel.Split(threads, k.kind.gates()*hs*hs*batch, minStepMACs)
	per = roundUp8((hs + parts - 1) / parts)
	return (hs + per - 1) / per, per
}

// minStepMACs is the least work of a step's part: the matrix-vector product
// runs at about 20 GFLOP/s on one core, so 16K multiply-adds take ~1.5 us,
// a few times a parallel region's cost.
const minStepMACs = 1 << 14

// storeFloat32s writes float32 values into a tensor of another real type.
func storeFloat32s(t *graph.Tensor, v []float32) error {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return storeFloat64s(t, f)
}

// direction runs the recurrence of direction d over all batch rows, writing
// its slices of Y, Y_h and Y_c. gx holds X·W^T of every step and direction,
// bias the direction's input-side bias; qr, when not nil, adds h·R of
// direction d to the gates in rec's place (DynamicQuantizeLSTM's quantized
// product).
func (k *recurrentKernel) direction(d int, rec []recMat, qr func(d, s int, h, gates []float32), gx, bias []float32, seq, batch, hs int, lens []int,
	h0, c0, pv, rbh, y, yh, yc []float32, threads int) {
	g, dirs := k.kind.gates(), k.dirs
	gh := g * hs
	reverse := k.reverse || d == 1
	f := k.acts[d*len(k.acts)/dirs:]
	yAt := func(t, b int) int {
		if k.layout == 1 {
			return ((b*seq+t)*dirs + d) * hs
		}
		return ((t*dirs+d)*batch + b) * hs
	}
	stAt := func(b int) int {
		if k.layout == 1 {
			return (b*dirs + d) * hs
		}
		return (d*batch + b) * hs
	}
	gxAt := func(t, b int) []float32 {
		row := t*batch + b
		if k.layout == 1 {
			row = b*seq + t
		}
		o := (row*dirs + d) * gh
		return gx[o : o+gh]
	}
	h := make([]float32, batch*hs)
	c := make([]float32, batch*hs)
	for b := 0; b < batch; b++ {
		if h0 != nil {
			copy(h[b*hs:(b+1)*hs], h0[stAt(b):stAt(b)+hs])
		}
		if c0 != nil {
			copy(c[b*hs:(b+1)*hs], c0[stAt(b):stAt(b)+hs])
		}
	}
	var pi, po, pf []float32
	if pv != nil {
		pi, po, pf = pv[d*3*hs:d*3*hs+hs], pv[d*3*hs+hs:d*3*hs+2*hs], pv[d*3*hs+2*hs:(d+1)*3*hs]
	}
	var rb []float32
	if rbh != nil {
		rb = rbh[d*hs : (d+1)*hs]
	}
	gates := make([]float32, batch*gh)
	tmp := make([]float32, hs)
	var aux []float32 // GRU: r⊙h, or R_h h + Rb_h under linear_before_reset
	if k.kind == kindGRU {
		aux = make([]float32, batch*hs)
	}
	clip := func(v []float32) {
		if k.clip > 0 {
			vec.Clip(v, v, -k.clip, k.clip)
		}
	}
	steps := 0
	for _, n := range lens {
		steps = max(steps, n)
	}
	// timeOf is the time step batch row b reads at step s (rows differ
	// under reverse with sequence_lens); false past the row's length.
	timeOf := func(s, b int) (int, bool) {
		if s >= lens[b] {
			return 0, false
		}
		if reverse {
			return lens[b] - 1 - s, true
		}
		return s, true
	}
	if parts, per := k.unitParts(threads, batch, hs); parts > 1 && qr == nil {
		// h of step s is hbuf[s%2], the next one goes to the other; each
		// part writes its units of it, and a row past its sequence length
		// carries them over.
		hbuf := [2][]float32{h, make([]float32, batch*hs)}
		parallel.Steps(parts, steps, parts, func(s, part int) {
			hIn, hOut := hbuf[s%2], hbuf[(s+1)%2]
			u0, u1 := part*per, min(hs, (part+1)*per)
			for b := 0; b < batch; b++ {
				t, ok := timeOf(s, b)
				if !ok {
					copy(hOut[b*hs+u0:b*hs+u1], hIn[b*hs+u0:b*hs+u1])
					continue
				}
				gb, gxb, hb := gates[b*gh:(b+1)*gh], gxAt(t, b), hOut[b*hs:(b+1)*hs]
				for q := 0; q < g; q++ {
					lo, hi := q*hs+u0, q*hs+u1
					vec.Add(gb[lo:hi], gxb[lo:hi], bias[lo:hi])
					if lo < rec[0].n { // R's gates: all but a GRU's hidden one
						rec[0].mulAddCols(gb[lo:hi], hIn[b*hs:(b+1)*hs], lo, hi)
					}
				}
				if k.kind == kindGRU { // under linear_before_reset (unitParts)
					ab := aux[b*hs : (b+1)*hs]
					copy(ab[u0:u1], rb[u0:u1])
					rec[1].mulAddCols(ab[u0:u1], hIn[b*hs:(b+1)*hs], u0, u1)
					k.gruCell(gb, hIn[b*hs:(b+1)*hs], hb, ab, tmp, f, clip, u0, u1)
				} else {
					k.cell(gb, hb, c[b*hs:(b+1)*hs], tmp, pi, po, pf, f, clip, u0, u1)
				}
				copy(y[yAt(t, b)+u0:yAt(t, b)+u1], hb[u0:u1])
			}
		})
		h = hbuf[steps%2]
	} else {
		for s := 0; s < steps; s++ {
			// Gate pre-activations: the projected input of each row's own time
			// step, plus h·R^T.
			for b := 0; b < batch; b++ {
				if t, ok := timeOf(s, b); ok {
					vec.Add(gates[b*gh:(b+1)*gh], gxAt(t, b), bias)
				}
			}
			if qr != nil {
				qr(d, s, h, gates)
			} else {
				rec[0].mulAdd(h, batch, hs, gates, gh)
			}
			if k.kind == kindGRU && k.linearBeforeReset {
				for b := 0; b < batch; b++ {
					copy(aux[b*hs:(b+1)*hs], rb)
				}
				rec[1].mulAdd(h, batch, hs, aux, hs)
			}
			if k.kind == kindGRU && !k.linearBeforeReset {
				// The hidden gate needs r first: activate z and r of every row,
				// then multiply r⊙h by R_h.
				for b := 0; b < batch; b++ {
					if s < lens[b] {
						zr := gates[b*gh : b*gh+2*hs]
						clip(zr)
						f[0].apply(zr, zr)
						vec.Mul(aux[b*hs:(b+1)*hs], zr[hs:], h[b*hs:(b+1)*hs])
					}
				}
				rec[1].mulAdd(aux, batch, hs, gates[2*hs:], gh)
			}
			for b := 0; b < batch; b++ {
				t, ok := timeOf(s, b)
				if !ok {
					continue
				}
				gb := gates[b*gh : (b+1)*gh]
				hb := h[b*hs : (b+1)*hs]
				switch k.kind {
				case kindRNN, kindLSTM:
					k.cell(gb, hb, c[b*hs:(b+1)*hs], tmp, pi, po, pf, f, clip, 0, hs)
				case kindGRU:
					k.gruCell(gb, hb, hb, aux[b*hs:(b+1)*hs], tmp, f, clip, 0, hs)
				}
				copy(y[yAt(t, b):yAt(t, b)+hs], hb)
			}
		}
	}
	for b := 0; b < batch; b++ {
		copy(yh[stAt(b):stAt(b)+hs], h[b*hs:(b+1)*hs])
		copy(yc[stAt(b):stAt(b)+hs], c[b*hs:(b+1)*hs])
	}
}

func init() {
	Register("", "RNN", 7, newRecurrent(kindRNN))
	Register("", "GRU", 7, newRecurrent(kindGRU))
	Register("", "LSTM", 7, newRecurrent(kindLSTM))
	Register("com.microsoft", "DynamicQuantizeLSTM", 1, func(ni *NodeInfo) (Kernel, error) {
		k, err := newRecurrent(kindLSTM)(ni)
		if err != nil {
			return nil, err
		}
		rk := k.(*recurrentKernel)
		rk.quantized, rk.packed = true, nil
		// The weights are read once when they are the model's constants.
		rk.qconst = true
		for _, i := range []int{1, 2, 8, 9, 10, 11} {
			if i < len(ni.Node.Inputs) && ni.Node.Input(i) != nil && ni.Const(i) == nil {
				rk.qconst = false
			}
		}
		return rk, nil
	})
}
