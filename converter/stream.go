package converter

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/passes"
)

// Streaming weight-only conversion: a model whose weights live in external
// data is loaded lazily (graph.LoadOptions.LazyExternal), and each weight is
// read, given its encoding, quantized, written to the output's data file
// (graph.DataWriter.Put) and dropped before the next one is read. Memory then
// holds the graph, the encodings and one weight, not the model: a model
// larger than memory converts. Weights that stay float are copied from the
// input's data file to the output's at save time without being read into
// memory.

// streamSkippedPasses are the default passes a streaming conversion skips:
// infer-shapes runs the model, which reads every weight into memory, and the
// folding passes rewrite weights in memory (a folded weight is a new
// in-memory tensor); on a model larger than memory each would hold every
// weight it touches. Weight-only quantization needs neither.
var streamSkippedPasses = []string{"infer-shapes", "fold-constants", "fold-bn", "fold-affine"}

// streamGCPercent is the garbage collector's GOGC during a streaming
// conversion.
const streamGCPercent = 20

// spillBytes: tensors made during a streaming conversion from this size on
// (quantized weights, block scales) go to the data file at once; smaller ones
// stay inline in the model.
const spillBytes = 1024

// weightRewritingPass names the first pass of a list given by name that reads
// or rewrites weights in memory (streamSkippedPasses, cle), or "".
func weightRewritingPass(list string) string {
	for _, item := range strings.Split(list, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(item), ":")
		if name == "cle" || slices.Contains(streamSkippedPasses, name) {
			return name
		}
	}
	return ""
}

// picksCodes reports whether the weight-rounding engine (rounding.go) may
// change some weight's codes after its encoding: the streaming loop writes
// nearest-rounded codes as soon as the encoding is known.
func picksCodes(opt Options, st *settings, pl *plan) bool {
	if (opt.WeightRounding != "" && opt.WeightRounding != "nearest") || opt.WeightRange == "mse" || opt.WeightBits != 0 {
		return true
	}
	for name := range pl.weights {
		if c := st.weight[name]; (c.WeightRounding != "" && c.WeightRounding != "nearest") || c.WeightRange == "mse" {
			return true
		}
	}
	return false
}

// streamPassList is the default pass list without streamSkippedPasses.
func streamPassList(opt Options) string {
	var keep []string
	for _, n := range passes.DefaultList {
		if slices.Contains(streamSkippedPasses, n) || (n == "initializers-not-inputs" && opt.KeepInitializerInputs) {
			continue
		}
		keep = append(keep, n)
	}
	return strings.Join(keep, ",")
}

// streamer quantizes weights one at a time into the output's data file.
type streamer struct {
	data    *graph.DataWriter
	opt     Options
	workers int
	nbits   *passes.Change // the MatMulNBits rewrites, one change for all weights
	// gcPercent is the collector's setting to restore after streaming.
	gcPercent int
	// zeros backs the zero points of symmetric encodings once written (see
	// shareZeros).
	zeros []int64
}

func newStreamer(data *graph.DataWriter, opt Options) *streamer {
	w := opt.Threads
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	s := &streamer{data: data, opt: opt, workers: w}
	if opt.WeightFormat == FormatMatMulNBits {
		s.nbits = &passes.Change{Pass: "matmulnbits", MaxRelDiff: -1}
	}
	return s
}

// spill streams a tensor made by the conversion out to the data file when it
// is large enough to matter.
func (s *streamer) spill(t *graph.Tensor) error {
	if t.ByteSize() < spillBytes {
		return nil
	}
	return s.data.Put(t)
}

// weight quantizes the float initializer name with enc and writes the result
// in the asked format; the float data is released (it stays on disk).
func (s *streamer) weight(m *graph.Model, name string, enc *passes.Encoding) error {
	g := m.Graph
	v := g.Value(name)
	if v == nil || v.Const == nil {
		return fmt.Errorf("weight %q is not an initializer", name)
	}
	w := v.Const
	if err := w.Load(); err != nil {
		return err
	}
	defer w.Release()
	defer s.shareZeros(enc)
	if s.nbits != nil {
		if ok, err := s.packNBits(m, v, enc); ok || err != nil {
			return err
		}
	}
	q, err := s.quantize(w, enc)
	if err != nil {
		return fmt.Errorf("weight %q: %v", name, err)
	}
	scale, zp, qv, err := dequantizeConst(g, v, q, enc)
	if err != nil {
		return err
	}
	if s.nbits != nil {
		// A weight the fused packing does not take (per channel, a consumer
		// other than MatMul): the general rewrite packs it from q.
		ch, err := passes.ToMatMulNBits(m, s.opt.AccuracyLevel, true)
		if err != nil {
			return err
		}
		s.nbits.Count += ch.Count
		s.nbits.Nodes = append(s.nbits.Nodes, ch.Nodes...)
		for _, n := range ch.Notes { // each call notes every activation MatMul again
			if !slices.Contains(s.nbits.Notes, n) {
				s.nbits.Notes = append(s.nbits.Notes, n)
			}
		}
		for _, c := range g.Initializers {
			if !c.Const.Lazy() && strings.HasPrefix(c.Name, name+"_dequantized_nbits_") {
				if err := s.spill(c.Const); err != nil {
					return err
				}
			}
		}
	}
	// What is left of the DequantizeLinear (all of it, or for readers other
	// than MatMuls) goes out too.
	for _, c := range []*graph.Value{qv, scale, zp} {
		if c.Const == nil {
			continue
		}
		if len(c.Consumers) == 0 && !g.IsOutput(c) {
			g.RemoveInitializer(c)
			continue
		}
		if err := s.spill(c.Const); err != nil {
			return err
		}
	}
	return nil
}

// shareZeros points an all-zero ZeroPoint (every symmetric signed encoding)
// at one shared read-only array: the report and the encodings file keep each
// weight's encoding, and an int64 per group of 32 weights is a third of a GB
// on a 3 GB model. The model's own zero-point tensors are already written.
func (s *streamer) shareZeros(enc *passes.Encoding) {
	for _, z := range enc.ZeroPoint {
		if z != 0 {
			return
		}
	}
	n := len(enc.ZeroPoint)
	if len(s.zeros) < n {
		s.zeros = make([]int64, max(n, 2*len(s.zeros)))
	}
	enc.ZeroPoint = s.zeros[:n:n]
}

// quantize computes QuantizeLinear of the weight, as passes.QuantizeTensor
// does, writing the integer type's slice directly and splitting the rows
// over the workers; shapes other than 2-D take passes.QuantizeTensor.
func (s *streamer) quantize(w *graph.Tensor, enc *passes.Encoding) (*graph.Tensor, error) {
	if w.DType != graph.Float || w.Rank() != 2 {
		return passes.QuantizeTensor(w, enc)
	}
	lo, hi, ok := kernels.QuantRange(enc.DType)
	if !ok {
		return nil, fmt.Errorf("%s is not a quantized type", enc.DType.Short())
	}
	rows, cols := w.Shape[0], w.Shape[1]
	at, err := scaleAt2D(enc, rows, cols)
	if err != nil {
		return nil, err
	}
	x := w.Float32s()
	out := graph.NewTensor(enc.DType, w.Shape)
	switch d := out.Data().(type) {
	case []int8:
		s.parallel(rows, func(r0, r1 int) { quantizeRows(d, x, enc, at, r0, r1, cols, lo, hi) })
	case []uint8:
		s.parallel(rows, func(r0, r1 int) { quantizeRows(d, x, enc, at, r0, r1, cols, lo, hi) })
	default:
		return passes.QuantizeTensor(w, enc)
	}
	return out, nil
}

// quantizeRows quantizes rows [r0, r1) of a [rows, cols] weight into dst.
func quantizeRows[E int8 | uint8](dst []E, x []float32, enc *passes.Encoding, at func(r, c int) int, r0, r1, cols int, lo, hi float64) {
	// Blocks along rows and channels along columns give each row a run of
	// cols scales starting at at(r, 0).
	runs := (enc.BlockSize > 0 && enc.Axis == 0) || (enc.BlockSize == 0 && enc.Axis == 1 && len(enc.Scale) == cols)
	for r := r0; r < r1; r++ {
		row, out := x[r*cols:(r+1)*cols], dst[r*cols:(r+1)*cols]
		if runs {
			k := at(r, 0)
			sc, zp := enc.Scale[k:k+cols], enc.ZeroPoint[k:k+cols]
			for c, v := range row {
				out[c] = E(kernels.QuantizeValue(v, sc[c], int32(zp[c]), lo, hi))
			}
			continue
		}
		for c, v := range row {
			k := at(r, c)
			out[c] = E(kernels.QuantizeValue(v, enc.Scale[k], int32(enc.ZeroPoint[k]), lo, hi))
		}
	}
}

// scaleAt2D is the scale index of element (r, c) of a [rows, cols] weight.
func scaleAt2D(enc *passes.Encoding, rows, cols int) (func(r, c int) int, error) {
	n := len(enc.Scale)
	switch {
	case enc.BlockSize > 0 && enc.Axis == 0 && n == (rows+enc.BlockSize-1)/enc.BlockSize*cols:
		b := enc.BlockSize
		return func(r, c int) int { return r/b*cols + c }, nil
	case enc.BlockSize > 0 && enc.Axis == 1 && n == rows*((cols+enc.BlockSize-1)/enc.BlockSize):
		b, nb := enc.BlockSize, (cols+enc.BlockSize-1)/enc.BlockSize
		return func(r, c int) int { return r*nb + c/b }, nil
	case enc.BlockSize > 0:
		return nil, fmt.Errorf("blocked scales %v do not fit [%d %d]", enc.ScaleShape, rows, cols)
	case n == 1:
		return func(int, int) int { return 0 }, nil
	case enc.Axis == 0 && n == rows:
		return func(r, _ int) int { return r }, nil
	case enc.Axis == 1 && n == cols:
		return func(_, c int) int { return c }, nil
	}
	return nil, fmt.Errorf("%d scales do not fit axis %d of [%d %d]", n, enc.Axis, rows, cols)
}

// parallel runs f on [0, n) split into one contiguous range per worker.
func (s *streamer) parallel(n int, f func(lo, hi int)) {
	w := min(s.workers, n)
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := n*i/w, n*(i+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// dequantizeConst replaces the float initializer v by q read through a
// DequantizeLinear, named and laid out as passes.InsertQDQ does for weights
// (float scales: a streaming conversion has no half-precision graph).
func dequantizeConst(g *graph.Graph, v *graph.Value, q *graph.Tensor, enc *passes.Encoding) (scale, zp, qv *graph.Value, err error) {
	shape := []int{len(enc.Scale)}
	switch {
	case enc.BlockSize > 0:
		shape = enc.ScaleShape
	case len(enc.Scale) == 1:
		shape = nil
	}
	scale = g.AddInitializer(g.UniqueName(v.Name+"_scale"), graph.Float32Tensor(shape, append([]float32(nil), enc.Scale...)))
	zt := graph.NewTensor(enc.DType, shape)
	kernels.StoreInt64s(zt, enc.ZeroPoint)
	zp = g.AddInitializer(g.UniqueName(v.Name+"_zero_point"), zt)
	qv = g.AddInitializer(g.UniqueName(v.Name+"_quantized"), q)
	var attrs []*onnxpb.AttributeProto
	if enc.BlockSize > 0 {
		attrs = append(attrs, graph.AttrIntOf("axis", int64(enc.Axis)), graph.AttrIntOf("block_size", int64(enc.BlockSize)))
	} else if enc.PerChannel() {
		attrs = append(attrs, graph.AttrIntOf("axis", int64(enc.Axis)))
	}
	dq := g.AddNode("DequantizeLinear", v.Name+"_DequantizeLinear", []*graph.Value{qv, scale, zp}, []string{v.Name + "_dequantized"}, attrs...)
	if err := g.ReplaceUses(v, dq.Output()); err != nil {
		return nil, nil, nil, err
	}
	if len(v.Consumers) == 0 && !g.IsOutput(v) && !g.IsInput(v) {
		g.RemoveInitializer(v)
	}
	return scale, zp, qv, nil
}

// packNBits quantizes a [K, N] MatMul weight blocked along K straight into
// MatMulNBits' packed layout (the one passes.ToMatMulNBits writes), with no
// unpacked integer copy: the largest weight of an LLM (its lm_head) would
// otherwise take its size again. It reports false, having changed nothing,
// when the weight does not fit that layout or has readers other than MatMuls'
// B input; the caller then takes the general path.
func (s *streamer) packNBits(m *graph.Model, v *graph.Value, enc *passes.Encoding) (bool, error) {
	g := m.Graph
	w := v.Const
	bits := enc.DType.BitWidth()
	if w.DType != graph.Float || w.Rank() != 2 || enc.BlockSize < 16 || enc.Axis != 0 || (bits != 4 && bits != 8) || g.IsOutput(v) || g.IsInput(v) || len(v.Consumers) == 0 {
		return false, nil
	}
	for _, c := range v.Consumers {
		if c.OpType != "MatMul" || !graph.IsStandardDomain(c.Domain) || c.Input(1) != v || c.Input(0) == v {
			return false, nil
		}
	}
	lo, hi, ok := kernels.QuantRange(enc.DType)
	if !ok {
		return false, nil
	}
	K, N, block := w.Shape[0], w.Shape[1], enc.BlockSize
	kBlocks := (K + block - 1) / block
	if len(enc.Scale) != kBlocks*N {
		return false, nil
	}
	offset := int64(0)
	if enc.DType == graph.Int4 || enc.DType == graph.Int8 {
		offset = 1 << (bits - 1)
	}
	blob := block * bits / 8
	packed := make([]uint8, N*kBlocks*blob)
	sc := make([]float32, N*kBlocks)
	plain := true
	for n := 0; n < N; n++ {
		for b := 0; b < kBlocks; b++ {
			sc[n*kBlocks+b] = enc.Scale[b*N+n]
			plain = plain && enc.ZeroPoint[b*N+n]+offset == 1<<(bits-1)
		}
	}
	x := w.Float32s()
	// Columns in tiles of 16 (one cache line of a row), so the row-major
	// weight is read sequentially while 16 packed columns are written.
	const tile = 16
	tiles := (N + tile - 1) / tile
	s.parallel(tiles, func(t0, t1 int) {
		for n0 := t0 * tile; n0 < min(N, t1*tile); n0 += tile {
			n1 := min(N, n0+tile)
			// Block by block, column by column: the block's rows of the
			// tile (block x 64 bytes) stay in L1 across the tile's columns.
			for b := 0; b < kBlocks; b++ {
				for n := n0; n < n1; n++ {
					si := b*N + n
					scale, z := enc.Scale[si], enc.ZeroPoint[si]
					out := packed[(n*kBlocks+b)*blob:][:blob]
					j := 0
					if bits == 4 { // two values a byte, low nibble first
						z32, off := int32(z), int32(offset)
						for k := b * block; j+1 < block && k+1 < K; j, k = j+2, k+2 {
							q0 := kernels.QuantizeValue(x[k*N+n], scale, z32, lo, hi) + off
							q1 := kernels.QuantizeValue(x[(k+1)*N+n], scale, z32, lo, hi) + off
							out[j/2] = uint8(q0&0xF) | uint8(q1&0xF)<<4
						}
					}
					for ; j < block; j++ { // 8 bits, and the odd or padded tail of 4
						q := z // padding past K dequantizes to 0
						if k := b*block + j; k < K {
							q = int64(kernels.QuantizeValue(x[k*N+n], scale, int32(z), lo, hi))
						}
						u := uint8(q + offset)
						if bits == 8 {
							out[j] = u
						} else {
							out[j/2] |= (u & 0xF) << (4 * (j % 2))
						}
					}
				}
			}
		}
	})
	bt, err := graph.TensorOf(graph.Uint8, []int{N, kBlocks, blob}, packed)
	if err != nil {
		return false, err
	}
	base := v.Name + "_dequantized"
	bv := g.AddInitializer(g.UniqueName(base+"_nbits_B"), bt)
	sv := g.AddInitializer(g.UniqueName(base+"_nbits_scales"), graph.Float32Tensor([]int{N * kBlocks}, sc))
	made := []*graph.Value{bv, sv}
	if !plain {
		perCol := (kBlocks*bits + 7) / 8
		zb := make([]uint8, N*perCol)
		for n := 0; n < N; n++ {
			for b := 0; b < kBlocks; b++ {
				z := uint8(enc.ZeroPoint[b*N+n] + offset)
				if bits == 8 {
					zb[n*perCol+b] = z
				} else {
					zb[n*perCol+b/2] |= (z & 0xF) << (4 * (b % 2))
				}
			}
		}
		zt, err := graph.TensorOf(graph.Uint8, []int{N * perCol}, zb)
		if err != nil {
			return false, err
		}
		made = append(made, g.AddInitializer(g.UniqueName(base+"_nbits_zero_points"), zt))
	}
	attrs := []*onnxpb.AttributeProto{
		graph.AttrIntOf("K", int64(K)), graph.AttrIntOf("N", int64(N)),
		graph.AttrIntOf("bits", int64(bits)), graph.AttrIntOf("block_size", int64(block)),
	}
	if s.opt.AccuracyLevel > 0 {
		attrs = append(attrs, graph.AttrIntOf("accuracy_level", int64(s.opt.AccuracyLevel)))
	}
	for _, mm := range append([]*graph.Node(nil), v.Consumers...) {
		ins := append([]*graph.Value{mm.Input(0)}, made...)
		out, name := mm.Output(), mm.Name
		g.RemoveNode(mm)
		nd := g.AddNode("MatMulNBits", name, ins, nil, attrs...)
		nd.Domain = passes.MatMulNBitsDomain
		nd.Outputs = []*graph.Value{out}
		out.Producer = nd
		s.nbits.Count++
		s.nbits.Nodes = append(s.nbits.Nodes, name)
	}
	if m.OpsetVersion(passes.MatMulNBitsDomain) < 1 {
		m.SetOpset(passes.MatMulNBitsDomain, 1)
	}
	g.RemoveInitializer(v)
	for _, c := range made {
		if err := s.spill(c.Const); err != nil {
			return true, err
		}
	}
	return true, nil
}

// weightEncoding is passes.WeightEncoding (min/max per tensor, channel or
// block) with the ranges of 2-D float weights gathered row by row over the
// workers instead of through a per-element index function, which dominated
// the time of a weight-only conversion. Other weights take passes'.
func weightEncoding(w *graph.Tensor, axis, block int, dt graph.DataType, symmetric bool, workers int) (*passes.Encoding, error) {
	if w.DType != graph.Float || w.Rank() != 2 || axis >= 2 || w.Len() == 0 {
		return passes.WeightEncoding(w, axis, block, dt, symmetric)
	}
	rows, cols := w.Shape[0], w.Shape[1]
	x := w.Float32s()
	// The ranges form a [gr, gc] grid: element (r, c) falls in (r/br, c/bc).
	gr, gc, br, bc := 1, 1, rows, cols
	switch {
	case axis == 0 && block > 0:
		gr, gc, br, bc = (rows+block-1)/block, cols, block, 1
	case axis == 1 && block > 0:
		gr, gc, br, bc = rows, (cols+block-1)/block, 1, block
	case axis == 0:
		gr, br = rows, 1
	case axis == 1:
		gc, bc = cols, 1
	}
	lo, hi := make([]float32, gr*gc), make([]float32, gr*gc)
	for k := range lo {
		lo[k], hi[k] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &streamer{workers: workers}
	if gr == 1 {
		s.workers = 1 // every row updates the same ranges
	}
	s.parallel(gr, func(g0, g1 int) {
		for r := g0 * br; r < min(rows, g1*br); r++ {
			l, h := lo[r/br*gc:][:gc], hi[r/br*gc:][:gc]
			for c, v := range x[r*cols : (r+1)*cols] {
				k := c / bc
				l[k], h[k] = min(l[k], v), max(h[k], v)
			}
		}
	})
	enc, err := rangeEncoding(lo, hi, max(axis, 0), dt, symmetric, workers)
	if err != nil {
		return nil, err
	}
	if len(lo) == 1 {
		enc.Axis = 0 // one channel or one block is per tensor
		return enc, nil
	}
	if block > 0 {
		enc.BlockSize, enc.ScaleShape = block, []int{gr, gc}
	}
	return enc, nil
}

// rangeEncoding is passes.RangeEncoding over the workers: each range's scale
// and zero point depend on that range alone, and an LLM weight in blocks of 32
// has millions of them.
func rangeEncoding(lo, hi []float32, axis int, dt graph.DataType, symmetric bool, workers int) (*passes.Encoding, error) {
	if workers <= 1 || len(lo) < 1024 {
		return passes.RangeEncoding(lo, hi, axis, dt, symmetric)
	}
	parts := make([]*passes.Encoding, workers)
	errs := make([]error, workers)
	s := &streamer{workers: workers}
	s.parallel(workers, func(w0, w1 int) {
		for w := w0; w < w1; w++ {
			a, b := len(lo)*w/workers, len(lo)*(w+1)/workers
			parts[w], errs[w] = passes.RangeEncoding(lo[a:b], hi[a:b], axis, dt, symmetric)
		}
	})
	enc := &passes.Encoding{DType: dt, Axis: axis, Scale: make([]float32, 0, len(lo)), ZeroPoint: make([]int64, 0, len(lo))}
	for w, p := range parts {
		if errs[w] != nil {
			return nil, errs[w]
		}
		enc.Scale = append(enc.Scale, p.Scale...)
		enc.ZeroPoint = append(enc.ZeroPoint, p.ZeroPoint...)
	}
	return enc, nil
}
