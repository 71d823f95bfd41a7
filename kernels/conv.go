package kernels

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// convParams are a convolution's attributes, normalized to 2-D (1-D convolutions
// get a unit height).
type convParams struct {
	autoPad                    string
	group                      int
	kh, kw                     int
	sh, sw, dh, dw             int
	padT, padL, padB, padR     int
	explicitKernel, explicitPd bool
	spatial                    int // 1 or 2
	outPadH, outPadW           int // ConvTranspose
	outShape                   []int64
}

// readConvParams reads the attributes; spatialHint (the input rank - 2 at run time)
// is used when neither constant weights nor attributes fix the spatial rank.
func readConvParams(ni *NodeInfo, spatialHint int) (*convParams, error) {
	a := attrsOf(ni.Node)
	p := &convParams{autoPad: a.String("auto_pad", "NOTSET"), group: int(a.Int("group", 1))}
	ks := a.Ints("kernel_shape", nil)
	strides := a.Ints("strides", nil)
	dil := a.Ints("dilations", nil)
	pads := a.Ints("pads", nil)
	outPad := a.Ints("output_padding", nil)
	p.outShape = a.Ints("output_shape", nil)
	if a.err != nil {
		return nil, a.err
	}
	// The spatial rank comes from the weights when they are known, else the attributes.
	spatial := len(ks)
	wi := 1
	if ni.Node.OpType == "QLinearConv" {
		wi = 3 // after x, x_scale, x_zero_point
	}
	if w := ni.Const(wi); w != nil {
		spatial = w.Rank() - 2
	}
	if spatial == 0 {
		spatial = max(len(strides), len(dil), len(pads)/2)
	}
	if spatial == 0 {
		spatial = spatialHint
	}
	if spatial == 0 {
		spatial = 2
	}
	if spatial < 1 || spatial > 2 {
		return nil, fmt.Errorf("%d-D convolutions need their rank known when the model is loaded (constant weights or attributes)", spatial)
	}
	p.spatial = spatial
	get := func(v []int64, i int, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		if len(v) != spatial && len(v) != 2*spatial {
			return 0, fmt.Errorf("attribute has %d values for a %d-D convolution", len(v), spatial)
		}
		return int(v[i]), nil
	}
	var err error
	two := func(v []int64, def int) (int, int) {
		if spatial == 1 {
			x, e := get(v, 0, def)
			if e != nil {
				err = e
			}
			return 1, x
		}
		x, e1 := get(v, 0, def)
		y, e2 := get(v, 1, def)
		if e1 != nil {
			err = e1
		} else if e2 != nil {
			err = e2
		}
		return x, y
	}
	if ks != nil {
		p.explicitKernel = true
		p.kh, p.kw = two(ks, 1)
		if spatial == 1 {
			p.kh = 1
		}
	}
	p.sh, p.sw = two(strides, 1)
	p.dh, p.dw = two(dil, 1)
	p.outPadH, p.outPadW = two(outPad, 0)
	if spatial == 1 {
		p.sh, p.dh, p.outPadH = 1, 1, 0
	}
	if pads != nil {
		if len(pads) != 2*spatial {
			return nil, fmt.Errorf("pads has %d values for a %d-D convolution", len(pads), spatial)
		}
		p.explicitPd = true
		if spatial == 1 {
			p.padL, p.padR = int(pads[0]), int(pads[1])
		} else {
			p.padT, p.padL, p.padB, p.padR = int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
		}
	}
	if err != nil {
		return nil, err
	}
	if p.group < 1 {
		return nil, fmt.Errorf("group %d must be positive", p.group)
	}
	if p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 {
		return nil, fmt.Errorf("strides and dilations must be positive")
	}
	switch p.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", p.autoPad)
	}
	return p, nil
}

// outSize computes a convolution output size and the padding used on one axis.
func convOut(in, k, s, d, padB, padE int, autoPad string) (out, pb, pe int) {
	ek := d*(k-1) + 1
	switch autoPad {
	case "VALID":
		return (in-ek)/s + 1, 0, 0
	case "SAME_UPPER", "SAME_LOWER":
		out = (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if autoPad == "SAME_UPPER" {
			return out, total / 2, total - total/2
		}
		return out, total - total/2, total / 2
	}
	return (in+padB+padE-ek)/s + 1, padB, padE
}

// as4D views an N x C x L tensor as N x C x 1 x L.
func as4D(shape []int, spatial int) ([]int, error) {
	if len(shape) != spatial+2 {
		return nil, fmt.Errorf("input rank %d does not fit a %d-D convolution", len(shape), spatial)
	}
	if spatial == 1 {
		return []int{shape[0], shape[1], 1, shape[2]}, nil
	}
	return shape, nil
}

type convKernel struct {
	ni       *NodeInfo
	epilogue *ewProgram     // fused elementwise ops, applied to the output in place
	eps      []vec.Epilogue // the epilogue per output channel, when it is one (see rowEpilogues)
	epsSame  bool           // every channel's eps is the same (a plain Relu or Clip)
	// reluStores: the epilogue is a plain Relu, which the GEMM's tile
	// kernels apply as they store a biased product (gemm's ...BiasRelu):
	// no pass over the output after it.
	reluStores bool
	p          *convParams
	cp         *convPacks                  // the packed weights, when they are constant (and not depthwise)
	layout     *atomic.Pointer[gridLayout] // the grid path's layout for the last geometry
	pwOffs     *atomic.Pointer[planeOffs]  // a pointwise convolution's input planes, for the narrow grid kernel
	wConst     *graph.Tensor
	res        *residual                        // a fused shortcut Add (and Relu), its tensor the 4th input
	pool       *stemPool                        // a fused MaxPool after it (conv_stempool.go)
	dw         *atomic.Pointer[depthwiseParams] // depthwiseC8's blocked weights and epilogue, when weights and bias are constant
	vecB       *atomic.Pointer[gemm.PackedB]    // the weights transposed, for 1x1 maps (runVector), packed on first use
	// bandWork is the im2col path's state for its threads, kept between
	// calls (nil while a call has it).
	bandWork *atomic.Pointer[convBandsWork]
	dwRows   *atomic.Pointer[depthwiseRows] // the depthwise rows path's plan for the last geometry
}

func newConv(ni *NodeInfo) (Kernel, error) {
	if r := convSpatialRank(ni); r >= 3 {
		return newConvND(ni, r, false)
	}
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
	k := &convKernel{p: p, wConst: ni.Const(1), ni: ni, layout: new(atomic.Pointer[gridLayout]), pwOffs: new(atomic.Pointer[planeOffs]),
		dw: new(atomic.Pointer[depthwiseParams]), vecB: new(atomic.Pointer[gemm.PackedB]), bandWork: new(atomic.Pointer[convBandsWork]),
		dwRows: new(atomic.Pointer[depthwiseRows])}
	if w := k.wConst; w != nil {
		if err := wantFloat(w, "Conv weights"); err != nil {
			return nil, err
		}
		if w.Rank() != p.spatial+2 {
			return nil, fmt.Errorf("weights of rank %d for a %d-D convolution", w.Rank(), p.spatial)
		}
		m := w.Shape[0]
		if m%p.group != 0 {
			return nil, fmt.Errorf("%d output channels do not divide into %d groups", m, p.group)
		}
		mg := m / p.group
		kk := graph.Numel(w.Shape[1:])
		if !(mg == 1 && p.group > 1) { // depthwise runs directly, no packing
			pointwise := kk == w.Shape[1] && p.sh == 1 && p.sw == 1
			k.cp = &convPacks{c: ni.packs, w: w.Float32s(), groups: p.group, mg: mg, kk: kk,
				// Compared on 96 columns, a whole number of every kernel's panels (16, 24, 32).
				hasNarrow:   gemm.NarrowRows() != 0 && gemm.GridTilesFor(mg, gemm.NarrowRows(), 96) < gemm.GridTilesFor(mg, gemm.PackRows(), 96),
				hasStreamed: pointwise && gemm.StreamedFits(mg, kk),
				hasCo:       gemm.HasCoTiles() && mg >= 32 && kk >= 128, // see coFits
			}
		}
	}
	return k, nil
}

// convPacks is a constant-weight convolution's packed weights, a slice
// per form with one pack per group, each form made on first use: a
// convolution takes one path per input geometry, most only ever one, and
// packing all four forms ahead was half of a ResNet-50 conversion's CPU
// (most of it page faults on the fresh memory).
type convPacks struct {
	c                 *PackCache
	w                 []float32
	groups, mg, kk    int
	a, narrow, stream lazyPacks[gemm.PackedA]
	co                lazyPacks[gemm.PackedCo]
	hasNarrow         bool // the 8- or 4-row grid kernels waste fewer rows than PackA's tiles
	hasStreamed       bool // a pointwise convolution's weights in k blocks (gemm.PackAStreamed: the same bits)
	hasCo             bool // the co-tile path may take it (conv_cotiles.go)
}

// lazyPacks is a form's packs, made once by the first caller (others wait).
type lazyPacks[T any] struct {
	once sync.Once
	v    []*T
}

func (lp *lazyPacks[T]) get(groups int, pack func(g int) *T) []*T {
	lp.once.Do(func() {
		for g := 0; g < groups; g++ {
			lp.v = append(lp.v, pack(g))
		}
	})
	return lp.v
}

func (p *convPacks) group(g int) []float32 { return p.w[g*p.mg*p.kk : (g+1)*p.mg*p.kk] }

// A is gemm.PackA's form.
func (p *convPacks) A() []*gemm.PackedA {
	return p.a.get(p.groups, func(g int) *gemm.PackedA { return p.c.packA(p.mg, p.kk, p.group(g)) })
}

// Narrow is gemm.PackANarrow's form, nil without hasNarrow.
func (p *convPacks) Narrow() []*gemm.PackedA {
	if !p.hasNarrow {
		return nil
	}
	return p.narrow.get(p.groups, func(g int) *gemm.PackedA { return p.c.packANarrow(p.mg, p.kk, p.group(g)) })
}

// Streamed is gemm.PackAStreamed's form, nil without hasStreamed.
func (p *convPacks) Streamed() []*gemm.PackedA {
	if !p.hasStreamed {
		return nil
	}
	return p.stream.get(p.groups, func(g int) *gemm.PackedA { return p.c.packAStreamed(p.mg, p.kk, p.group(g)) })
}

// Co is gemm.PackCo's form, nil without hasCo.
func (p *convPacks) Co() []*gemm.PackedCo {
	if !p.hasCo {
		return nil
	}
	return p.co.get(p.groups, func(g int) *gemm.PackedCo { return p.c.packCo(p.mg, p.kk, p.group(g)) })
}

// withEpilogue accepts a program whose constants are scalars or one value per
// output channel, so it fits every output this Conv can produce.
func (k *convKernel) withEpilogue(p *ewProgram) Kernel {
	if k.wConst == nil || k.epilogue != nil {
		return nil
	}
	m := k.wConst.Shape[0]
	for _, op := range p.ops {
		if op.kind == ewAffine && len(op.mul) != m && len(op.mul) != 1 {
			return nil
		}
		for _, c := range op.tensors() {
			if c.Len() == 1 && c.Rank() <= k.p.spatial+2 {
				continue
			}
			// [C, 1, ...] or [1, C, 1, ...] with one trailing 1 per spatial axis.
			sh := c.Shape
			if len(sh) == k.p.spatial+2 && sh[0] == 1 {
				sh = sh[1:]
			}
			if len(sh) != k.p.spatial+1 || sh[0] != m || graph.Numel(sh[1:]) != 1 {
				return nil
			}
		}
	}
	c := *k
	c.epilogue = p
	c.eps = p.rowEpilogues(m)
	c.epsSame = len(c.eps) > 0 && !slices.ContainsFunc(c.eps, func(e vec.Epilogue) bool { return e != c.eps[0] })
	c.reluStores = c.epsSame && isReluEpilogue(c.eps[0])
	c.dw = new(atomic.Pointer[depthwiseParams]) // its epilogues are not k's
	return &c
}

func (k *convKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if k.pool != nil {
		return k.runPooled(ctx, in)
	}
	if nd, err := ndAtRunTime(k.ni, in, false); nd != nil || err != nil {
		return runOr(ctx, nd, in, err)
	}
	var short *graph.Tensor
	if k.res != nil {
		if len(in) != 4 || in[3] == nil {
			return nil, fmt.Errorf("the fused shortcut Add has no input")
		}
		in, short = in[:3], in[3]
	}
	out, skip, err := k.run(ctx, in, short)
	if err != nil || k.res == nil || skip {
		return one(out), err
	}
	// A shortcut of another shape (broadcast): the Add and Relu unfused.
	res, err := k.res.unfused(ctx, out, short)
	return one(res), err
}

// convCall is one call's inputs as Conv reads them: the tensors, sizes,
// bias and geometry.
type convCall struct {
	x, w       *graph.Tensor
	p          *convParams
	n, g, m, c int
	cg, mg     int
	bias       []float32
	geo        convGeom
	// outDims[:outRank] is the output's shape: an array, so a call's
	// shape stays on the caller's stack.
	outDims [4]int
	outRank int
}

// setup reads and checks a call's inputs and places its windows.
func (k *convKernel) setup(in []*graph.Tensor) (cc convCall, err error) {
	x, w, p, xs, ws, err := convInputs(in, k.p, k.ni, "Conv")
	if err != nil {
		return cc, err
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	m, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	if p.explicitKernel && (kh != p.kh || kw != p.kw) {
		return cc, fmt.Errorf("kernel_shape %dx%d does not match weights %dx%d", p.kh, p.kw, kh, kw)
	}
	g := p.group
	if c != cg*g || m%g != 0 {
		return cc, fmt.Errorf("input has %d channels, weights expect %d x %d groups (output %d)", c, cg, g, m)
	}
	oh, pt, _ := convOut(h, kh, p.sh, p.dh, p.padT, p.padB, p.autoPad)
	ow, pl, _ := convOut(wd, kw, p.sw, p.dw, p.padL, p.padR, p.autoPad)
	if oh <= 0 || ow <= 0 {
		return cc, fmt.Errorf("input %dx%d is too small for the kernel", h, wd)
	}
	var bias []float32
	if len(in) > 2 && in[2] != nil {
		if in[2].Len() != m || in[2].DType != graph.Float {
			return cc, fmt.Errorf("bias has shape %v, want [%d] float32", in[2].Shape, m)
		}
		bias = in[2].Float32s()
	}
	outDims, outRank := [4]int{n, m, oh, ow}, 4
	if p.spatial == 1 {
		outDims, outRank = [4]int{n, m, ow}, 3
	}
	return convCall{x: x, w: w, p: p, n: n, g: g, m: m, c: c, cg: cg, mg: m / g, bias: bias, outDims: outDims, outRank: outRank,
		geo: convGeom{c: c, h: h, w: wd, kh: kh, kw: kw, sh: p.sh, sw: p.sw, dh: p.dh, dw: p.dw, pt: pt, pl: pl, oh: oh, ow: ow}}, nil
}

// run computes the convolution, and adds short (nil for none) to it in place
// when it has the output's shape, which skip then reports.
func (k *convKernel) run(ctx *Context, in []*graph.Tensor, short *graph.Tensor) (out *graph.Tensor, skip bool, err error) {
	cc, err := k.setup(in)
	if err != nil {
		return nil, false, err
	}
	x, w, n, c, m, cg, g := cc.x, cc.w, cc.n, cc.c, cc.m, cc.cg, cc.g
	oh, ow, kh, kw, bias, outShape := cc.geo.oh, cc.geo.ow, cc.geo.kh, cc.geo.kw, cc.bias, cc.outDims[:cc.outRank]
	out = ctx.Float32(outShape)
	var sk []float32
	if short != nil && short.DType == graph.Float && slices.Equal(short.Shape, outShape) {
		sk, skip = short.Float32s(), true
	}
	geo := cc.geo
	xd, od, wdata := x.Float32s(), out.Float32s(), w.Float32s()
	prog := k.epilogue
	var epi *ewRun
	if prog != nil {
		epi = prog.prepare(outShape)
	}
	mg := m / g
	gathered := stridedPointwise(geo)
	packed := k.cp != nil && in[1] == k.wConst
	switch k.pathOf(in, cc, skip) {
	case pathDepthwise:
		var cache *atomic.Pointer[depthwiseParams]
		if in[1] == k.wConst && (bias == nil || in[2] == k.ni.Const(2)) {
			cache = k.dw
		}
		depthwise(ctx, geo, n, g, xd, wdata, bias, od, prog, epi, k.eps, cache, k.dwRows)
		if skip {
			k.res.apply(od, sk) // one pass, on one thread: no ResNet block ends in a depthwise Conv
		}
		return out, skip, nil
	case pathVector:
		k.runVector(ctx, n, c, m, xd, od, wdata, bias, prog, epi, sk, skip)
		return out, skip, nil
	case pathCo:
		var l *gridLayout
		if !isPointwise(geo) {
			l = k.gridLayoutFor(geo, cg)
		}
		k.runCo(ctx, l, geo, k.cp.Co(), n, g, cg, mg, xd, od, bias, epi, sk, skip)
		return out, skip, nil
	case pathCoGathered:
		pg, gx := gatherStrided(ctx, geo, n, c, xd)
		defer ctx.Release(gx)
		k.runCo(ctx, nil, pg, k.cp.Co(), n, g, cg, mg, gx, od, bias, epi, sk, skip)
		return out, skip, nil
	case pathStem:
		l := k.gridLayoutFor(geo, cg)
		runStem(ctx, l.stemFor(mg, k.cp.hasNarrow), n, g, mg, xd, od, bias, k.cp.A(), k.cp.Narrow(), prog, epi, k.eps, k.reluStores)
		return out, skip, nil
	case pathGrid:
		var res *residual
		if skip {
			res = k.res
		}
		runGrid(ctx, k.gridLayoutFor(geo, cg), n, g, mg, xd, od, bias, k.cp.A(), k.cp.Narrow(), prog, epi, k.eps, res, sk, k.reluStores)
		return out, skip, nil
	}
	kk := cg * kh * kw
	spatialN := oh * ow
	pointwise := isPointwise(geo)
	var packs []*gemm.PackedA
	switch {
	case pointwise && packed && k.cp.hasStreamed && spatialN >= streamedPlane && gemm.StreamsB(spatialN) && !pointwiseWholeK:
		packs = k.cp.Streamed()
	case packed:
		packs = k.cp.A()
	}
	// Threads take work items: bands of output rows of one group of one image,
	// each running the bias, im2col (unless pointwise), a one-thread GEMM and
	// the fused epilogue while its rows are in cache; a thread takes items
	// until none are left, so grouped convolutions and batches spread over
	// threads too. With a single band (one output row), the GEMM splits itself.
	//
	// A pointwise band is a range of pixels, not of rows: whole panels of
	// the GEMM's B (pixelBand), so that the bands have one ragged panel
	// between them where row bands had one each (14x14 in two bands of 98
	// pixels: 4 tiles of 32 each, 3 of them full; as 96 and 100, 3 and 4).
	// Paired at 2 threads (BenchmarkPointwiseBands), pixels / rows: 48 ->
	// 48 on 14x14 0.81-1.00 (median of five 0.93), 24 -> 24 on 28x28
	// 0.89-1.03 (median of five 0.97), 56x56 and 112x112 0.96-1.00; whole models
	// (ShuffleNetV2, MobileNetV2/V3, DenseNet) within 1% either way.
	bandThreads := threadsFor(ctx, mg*kk*spatialN, minBandMACs)
	bands := min(oh, bandThreads)
	bandRows := (oh + bands - 1) / bands
	bands = (oh + bandRows - 1) / bandRows // 5 rows in 4 bands of 2 are 3 bands
	// With fewer than two panels a band (7x7: 49 pixels, 2 panels) the
	// panels split unevenly (32 and 17) and rows do better (28 and 21:
	// 1.00-1.03x the time as panels, 2 threads).
	pixelBands := false
	if pointwise && !rowBands && bandThreads > 1 && panelsOf(spatialN) >= 2*bandThreads {
		bands, pixelBands = bandThreads, true
	}
	workers := min(n*g*bands, threadsFor(ctx, n*m*kk*spatialN, minBandMACs))
	// im2col runs in strips of output rows whose column matrix stays under
	// about 4 MiB and whose output (about 256 KiB) stays in L2 from the GEMM
	// to the epilogue (SqueezeNet's stem, 3 MiB of output: 0.85 of its time,
	// timed in the whole model); weights larger than that would be streamed
	// again for every strip, so their layers take strips of the weights'
	// size. A pointwise band is one strip unless a pass follows the GEMM
	// (see band): pixel strips of 256 KiB of output measured 1.02-1.05x
	// slower on YOLO's 104x104 layers, with or without a pass that fills the
	// output with the bias first (AVX2 machine).
	if workers > 1 && packed && n*g == 1 && (pointwise || kk*spatialN <= 1<<20) {
		bandPix := bandRows * ow
		if pixelBands {
			j0, j1 := pixelBand(bands-1, bands, spatialN) // the last band has the most panels
			bandPix = j1 - j0
		}
		if parts := channelParts(packs[0], workers, spatialN, bandPix, pointwise); parts > 1 {
			k.runChannels(ctx, geo, packs[0], parts, workers, pointwise, xd, od, bias, prog, epi, sk, skip)
			return out, skip, nil
		}
	}
	stripOut := max(convStripFloats, mg*kk)
	stripRows := bandRows
	if !pointwise && !gathered {
		stripRows = max(1, min(bandRows, (1<<20)/max(1, kk*ow), stripOut/max(1, mg*ow)))
	}
	var cols seatRegions
	if !pointwise {
		cols = ctx.seatScratch(workers, kk*stripRows*ow)
		defer ctx.Release(cols.buf)
	}
	// The Relu in the micro-kernels' stores, where the product is packed
	// and biased and the epilogue a plain Relu.
	reluStored := k.reluStores && packed && bias != nil && !noReluStores
	cb := convBands{k: k, geo: geo, c: c, cg: cg, h: geo.h, wd: geo.w, m: m, mg: mg, kk: kk, ow: ow, spatialN: spatialN,
		stripRows: stripRows, stripOut: stripOut, xd: xd, od: od, wdata: wdata, bias: bias, sk: sk, packs: packs,
		prog: prog, epi: epi, packed: packed, pointwise: pointwise, reluStored: reluStored, skip: skip, pixelBands: pixelBands,
		bandShortcut: workers == 1}
	if workers == 1 {
		for i := 0; i < n*g*bands; i++ {
			cb.runItem(i, g, bands, bandRows, cols.at(0), ctx.Threads)
		}
	} else {
		w := k.bandWork.Swap(nil) // nil while another call has it: then a new one
		if w == nil {
			w = &convBandsWork{}
			w.item = w.run
		}
		*w = convBandsWork{item: w.item, convBands: cb, cols: cols, g: g, bands: bands, bandRows: bandRows}
		parallel.ForSeat(workers, n*g*bands, w.item)
		*w = convBandsWork{item: w.item} // keeps nothing of this call alive
		k.bandWork.Store(w)
	}
	return out, skip, nil
}

// convPath is the kernel a convolution call takes.
type convPath int

const (
	pathDepthwise  convPath = iota // one input channel per output channel
	pathVector                     // packed, 1x1 kernel on a 1x1 map: matrix times vector
	pathCo                         // packed, small maps: co-tiles (runCo)
	pathCoGathered                 // packed, strided 1x1 to a small map: its pixels gathered, then co-tiles
	pathStem                       // packed, few input channels: strips of a grid (runStem)
	pathGrid                       // packed: a grid over the input in place (runGrid)
	pathIm2col                     // anything else: im2col (unless pointwise) and GEMM in bands
)

// pathOf is the kernel run takes for the call; skip: a residual is to be
// added in place, which the stem path does not do. One decision for run and
// for the fused stem pool (stemPooled), so the two cannot drift apart.
func (k *convKernel) pathOf(in []*graph.Tensor, cc convCall, skip bool) convPath {
	geo, g, cg, mg := cc.geo, cc.g, cc.cg, cc.mg
	if mg == 1 && g > 1 && cg == 1 {
		return pathDepthwise
	}
	packed := k.cp != nil && in[1] == k.wConst
	switch {
	case !packed:
		return pathIm2col
	case g == 1 && geo.oh*geo.ow == 1 && isPointwise(geo):
		return pathVector
	case k.cp.hasCo && !forceIm2col && !longRows(geo, cg) && coFits(geo, cg, mg):
		return pathCo
	case k.cp.hasCo && !forceIm2col && stridedPointwise(geo) && coFits(gatheredGeom(geo), cg, mg):
		return pathCoGathered
	case forceIm2col || stridedPointwise(geo) || longRows(geo, cg) || isPointwise(geo):
		return pathIm2col
	case !skip && !forceGridStem && stemFits(cg):
		return pathStem
	}
	return pathGrid
}

// convBands is what the im2col path's bands and strips compute with (see
// convKernel.run). Methods on it rather than closures: closures that the
// threads' loop captures are garbage every call, also when one thread runs
// every band (see Session.vals).
type convBands struct {
	k                                     *convKernel
	geo                                   convGeom
	c, cg, h, wd, m, mg, kk, ow, spatialN int
	stripRows, stripOut                   int
	xd, od, wdata, bias, sk               []float32
	packs                                 []*gemm.PackedA
	prog                                  *ewProgram
	epi                                   *ewRun
	packed, pointwise, reluStored, skip   bool
	pixelBands                            bool // pointwise bands of pixels (pixelBand), not rows
	bandShortcut                          bool // the shortcut over a band after its strips (see shortcut)
}

// strip computes output pixels [j0, j1) of group gi of image b from B in
// src, whose first column is pixel j0.
func (cb *convBands) strip(b, gi, j0, j1 int, src gemm.Matrix, threads int, regs [][]float32) {
	k, m, mg, cg, kk, spatialN := cb.k, cb.m, cb.mg, cb.cg, cb.kk, cb.spatialN
	od, bias, wdata := cb.od, cb.bias, cb.wdata
	packs, epi := cb.packs, cb.epi
	packed, pointwise, reluStored := cb.packed, cb.pointwise, cb.reluStored
	base := (b*m + gi*mg) * spatialN
	og := od[base : base+mg*spatialN]
	n := j1 - j0
	dst := og[j0:]
	switch {
	case packed && pointwise && k.cp.hasNarrow && !pointwiseTiles && (kk <= 32 || gemm.NarrowRows() == 8) &&
		gemm.GridTilesFor(mg, gemm.NarrowRows(), n) < gemm.GridTiles(packs[gi], n):
		// Few output channels (16): the narrow grid kernel reads the
		// input planes in place (one grid row of n pixels, a tap per
		// input channel), where the 12-row AVX-512 tiles would compute
		// 24 rows and the 6-row AVX2 ones 18. Paired, narrow / tiles:
		// AVX-512 8-row kernel 0.71-0.95 (16->16 on 208x208, 32->16 on
		// 112x112, 64->16 and 128->16 on 55x55); AVX2 4x24 kernel (same
		// machine) 0.79-0.83 with 16 and 32 input channels, but
		// 0.98-1.08 with 64 and 128, which keep the tiles.
		narrow := k.cp.Narrow()[gi]
		grid := gemm.Grid{Data: src.Data, Offs: k.planeOffs(cg, spatialN), Rows: 1, Cols: n, RowStride: n}
		switch {
		case reluStored:
			gemm.MulPackedAGridBiasRelu(narrow, grid, bias[gi*mg:(gi+1)*mg], dst, spatialN, threads)
		case bias != nil:
			gemm.MulPackedAGridBias(narrow, grid, bias[gi*mg:(gi+1)*mg], dst, spatialN, threads)
		default:
			gemm.MulPackedAGrid(narrow, grid, 0, dst, spatialN, threads)
		}
	case reluStored:
		gemm.MulPackedABiasRelu(packs[gi], n, src, bias[gi*mg:(gi+1)*mg], dst, spatialN, threads)
	case packed && bias != nil: // the micro-kernels add the bias as they store
		gemm.MulPackedABias(packs[gi], n, src, bias[gi*mg:(gi+1)*mg], dst, spatialN, threads)
	case packed:
		gemm.MulPackedA(packs[gi], n, src, 0, dst, spatialN, threads)
	default:
		beta := float32(0)
		if bias != nil {
			for i := 0; i < mg; i++ {
				fillSlice(og[i*spatialN+j0:i*spatialN+j1], bias[gi*mg+i])
			}
			beta = 1
		}
		gemm.Sgemm(mg, n, kk, 1, gemm.Matrix{Data: wdata[gi*mg*kk:], Stride: kk}, src, beta, dst, spatialN, threads)
	}
	if epi != nil && !reluStored {
		k.finishPlanes(epi, regs, od, base/spatialN, base/spatialN+mg, spatialN, j0, j0+n)
	}
	if cb.skip && !cb.bandShortcut {
		cb.shortcut(b, gi, j0, j1)
	}
}

// shortcut adds the fused shortcut to output pixels [j0, j1) of group gi of
// image b (and runs its Relu), channel by channel: after each strip, while
// the strip's output is in cache, or with bandShortcut once over a band's
// pixels after all of its strips. On one thread the band wins: the
// shortcut comes from memory, and a strip's rows of a few hundred pixels
// are too short for the hardware's stream prefetch (ResNet-50's 1x1 layers
// with the Add on 56x56 and 28x28: 0.82-0.88 and 0.87-0.93x the time, in
// spite of the output no longer being in cache). On two threads, each
// streaming its band, the strips win (28x28: the band 1.25-1.28x the time,
// CPUs apart; session 39 measured 1.05-1.11x).
func (cb *convBands) shortcut(b, gi, j0, j1 int) {
	base := (b*cb.m + gi*cb.mg) * cb.spatialN
	for i := 0; i < cb.mg; i++ {
		at := base + i*cb.spatialN
		cb.k.res.apply(cb.od[at+j0:at+j1], cb.sk[at+j0:at+j1])
	}
}

// runItem computes band i%bands of group i/bands%g of image i/(bands*g): rows
// of bandRows, or for a pointwise convolution the pixels of pixelBand.
func (cb *convBands) runItem(i, g, bands, bandRows int, col []float32, threads int) {
	t, gi, b := i%bands, i/bands%g, i/(bands*g)
	if cb.pixelBands {
		j0, j1 := pixelBand(t, bands, cb.spatialN)
		cb.pixels(b, gi, j0, j1, threads)
		return
	}
	cb.band(b, gi, t*bandRows, min(cb.geo.oh, (t+1)*bandRows), col, threads)
}

// pixels computes output pixels [j0, j1) of group gi of image b of a
// pointwise convolution.
func (cb *convBands) pixels(b, gi, j0, j1, threads int) {
	xg := cb.xd[(b*cb.c+gi*cb.cg)*cb.h*cb.wd:]
	var regs [][]float32
	if cb.epi != nil {
		regs = cb.prog.registers()
	}
	// With a pass after the GEMM (the epilogue, a shortcut), strips of
	// about stripOut outputs, so that the pass finds them in cache:
	// MobileNetV2 (its 1x1 layers' BatchNormalization and Clip, 4.8 MiB
	// of output on 112x112) 0.971x the time, paired runs on an AVX-512
	// machine; YOLO, SqueezeNet, the CIFAR ResNet unchanged.
	step := j1 - j0
	if cb.epi != nil || cb.skip {
		step = max(64, cb.stripOut/max(1, cb.mg)&^31)
	}
	for s0 := j0; s0 < j1; s0 += step {
		s1 := min(j1, s0+step)
		cb.strip(b, gi, s0, s1, gemm.Matrix{Data: xg[s0:], Stride: cb.spatialN}, threads, regs)
	}
	if cb.skip && cb.bandShortcut {
		cb.shortcut(b, gi, j0, j1)
	}
}

// panelsOf is how many panels of B n pixels make.
func panelsOf(n int) int { return (n + gemm.PanelCols() - 1) / gemm.PanelCols() }

// pixelBand is band t of bands over n pixels: whole panels of B, the bands'
// panel counts at most one apart, the ragged panel in the last band.
func pixelBand(t, bands, n int) (j0, j1 int) {
	nr, panels := gemm.PanelCols(), panelsOf(n)
	return min(n, t*panels/bands*nr), min(n, (t+1)*panels/bands*nr)
}

// rowBands splits pointwise convolutions into bands of rows as the others,
// for the benchmark that compares.
var rowBands = false

// band computes output rows [r0, r1) of group gi of image b.
func (cb *convBands) band(b, gi, r0, r1 int, col []float32, threads int) {
	geo, c, cg, h, wd, ow := cb.geo, cb.c, cb.cg, cb.h, cb.wd, cb.ow
	stripRows, xd, prog, epi := cb.stripRows, cb.xd, cb.prog, cb.epi
	if cb.pointwise {
		cb.pixels(b, gi, r0*ow, r1*ow, threads)
		return
	}
	xg := xd[(b*c+gi*cg)*h*wd:]
	var regs [][]float32
	if epi != nil {
		regs = prog.registers()
	}
	bctx := &Context{Threads: threads}
	for y0 := r0; y0 < r1; y0 += stripRows {
		y1 := min(r1, y0+stripRows)
		im2col(bctx, geo, cg, xg, col, y0, y1)
		cb.strip(b, gi, y0*ow, y1*ow, gemm.Matrix{Data: col, Stride: (y1 - y0) * ow}, threads, regs)
	}
	if cb.skip && cb.bandShortcut {
		cb.shortcut(b, gi, r0*ow, r1*ow)
	}
}

// convBandsWork is what the im2col path's threads compute with: the
// bands' state and how items map to bands. The kernel keeps one between
// calls, with its run method bound once: a closure for the threads would
// be garbage every call (see Session.vals).
type convBandsWork struct {
	convBands
	item               func(seat, i int)
	cols               seatRegions
	g, bands, bandRows int
}

// run computes item i (convBands.runItem) with seat's share of the column
// scratch.
func (w *convBandsWork) run(seat, i int) {
	w.runItem(i, w.g, w.bands, w.bandRows, w.cols.at(seat), 1)
}

// runVector computes a pointwise convolution of 1x1 maps (a
// squeeze-excitation's two convolutions after its global pooling, a head
// after global pooling) as one product: the n images' c channels (rows of
// x) times the transposed weights, whose rows are the output's [n, m]
// layout. The convolution paths would compute a tile of 12 or 32 channels
// by 32 pixels for each pixel: EfficientNet's 48 -> 1152 with its Sigmoid
// took 38 us, 1152 -> 48 11 us. For one image the product is the packed
// GEMV, which reads the weights once.
func (k *convKernel) runVector(ctx *Context, n, c, m int, xd, od, wd, bias []float32, prog *ewProgram, epi *ewRun, sk []float32, skip bool) {
	pb := k.vecB.Load() // constant weights: the same every run
	if pb == nil {
		pb = gemm.PackB(c, m, gemm.Matrix{Data: wd, Stride: c, Trans: true})
		k.vecB.Store(pb)
	}
	beta := float32(0)
	if bias != nil {
		for b := 0; b < n; b++ {
			copy(od[b*m:(b+1)*m], bias)
		}
		beta = 1
	}
	gemm.MulPackedB(n, 1, gemm.Matrix{Data: xd, Stride: c}, pb, beta, od, m, ctx.Threads)
	if epi != nil {
		k.finishPlanes(epi, prog.registers(), od, 0, n*m, 1, 0, 1)
	}
	if skip {
		k.res.apply(od, sk)
	}
}

// finishPlanes applies the fused epilogue (epi, or the per-channel k.eps,
// which take one pass where the program is one epilogue) to elements
// [lo, hi) of output planes [p0, p1), plane p of the N*M at p*spatialN.
// Whole planes whose epilogue is the same for every channel get one pass
// over the block: on small maps a call per plane cost more than the work
// (an EfficientNet squeeze-excitation's 48 -> 1152 1x1 conv on a 1x1 map
// with its Sigmoid: 1152 calls of one element).
func (k *convKernel) finishPlanes(epi *ewRun, regs [][]float32, od []float32, p0, p1, spatialN, lo, hi int) {
	whole := lo == 0 && hi == spatialN
	switch {
	case k.eps != nil && whole && k.epsSame:
		k.eps[0].Apply(od[p0*spatialN : p1*spatialN])
	case k.eps != nil:
		for p := p0; p < p1; p++ {
			k.eps[p%len(k.eps)].Apply(od[p*spatialN+lo : p*spatialN+hi])
		}
	default:
		epi.planes(regs, od, p0, p1, spatialN, lo, hi)
	}
}

// channelParts is how many shares of the output channels (whole row tiles of
// the packed weights p) threads should take instead of bands of at most
// bandPix of the output's pixels: threads, or 1 for bands. On small maps
// (7x7, 13x13) the bands are few and uneven (7 rows: 4 and 3) and make few
// column panels, so each thread streams all the weights for little reuse
// (MobileNetV2's 1x1 320->1280 on 7x7 ran 1.5x faster on two threads split
// by bands, 1.9x by channels, estimated with parallel.Account). A share keeps every pixel and
// reuses its weights as one thread does, but packs all of B (the input or
// its im2col matrix) where a band packs its own columns: shares are taken
// where the output channels outnumber the pixels (twice over through
// im2col: SqueezeNet's 3x3 64->256 on 13x13 gained nothing) and leave the
// busiest thread at most 5% more tiles (counted as GridTiles counts them,
// padding included).
func channelParts(p *gemm.PackedA, threads, pixels, bandPix int, pointwise bool) int {
	if noChannelSplit || gemm.PartsOf(p, 3) < threads { // 3 tiles: more rows than the GEMM's in-place path takes
		return 1
	}
	rowTiles := gemm.PartsOf(p, 1)
	perThread := (rowTiles + threads - 1) / threads
	shares := gemm.GridTiles(p, pixels) * perThread
	bands := gemm.GridTiles(p, bandPix) * rowTiles
	if !pointwise {
		pixels *= 2 // B is im2col's matrix, written before it is packed
	}
	if p.M > pixels && 20*shares <= 21*bands {
		return threads
	}
	return 1
}

// noChannelSplit turns channelParts off, for benchmarks that compare.
var noChannelSplit = false

// runChannels computes a convolution of one image and group, with packed
// weights, split into parts shares of its output channels: im2col first
// (unless pointwise; itself split across threads), then each share's GEMM
// and epilogue. Each output element is summed as on one thread.
func (k *convKernel) runChannels(ctx *Context, geo convGeom, pa *gemm.PackedA, parts, threads int, pointwise bool, xd, od, bias []float32, prog *ewProgram, epi *ewRun, sk []float32, skip bool) {
	spatialN := geo.oh * geo.ow
	src := gemm.Matrix{Data: xd, Stride: spatialN}
	if !pointwise {
		kk := geo.c * geo.kh * geo.kw
		col := ctx.Scratch(kk * spatialN)
		defer ctx.Release(col)
		im2col(ctx, geo, geo.c, xd, col, 0, geo.oh)
		src.Data = col
	}
	parallel.For(threads, parts, func(part int) {
		i0, i1 := gemm.MulPackedAPart(pa, part, parts, spatialN, src, bias, od, spatialN)
		var regs [][]float32
		if epi != nil {
			regs = prog.registers()
		}
		if epi != nil {
			k.finishPlanes(epi, regs, od, i0, i1, spatialN, 0, spatialN)
		}
		for i := i0; skip && i < i1; i++ {
			at := i * spatialN
			k.res.apply(od[at:at+spatialN], sk[at:at+spatialN])
		}
	})
}

// longRows reports whether g is a 1-D convolution (one output row, kernel
// one row high) over long rows of many channels: Whisper's and wav2vec's
// convolutions over thousands of frames. The grid and co-tile paths read
// each tile's taps where they lie, one stream per input channel and phase
// (768 for Whisper's 384 -> 384 stride 2 on 3000 frames), too many for the
// prefetchers once the rows are larger than L1 can hold a tile's worth of;
// im2col writes and the GEMM reads its matrix in order. Paired, thread CPU
// time (BenchmarkConv1dPaths), im2col against the path before: Whisper's
// 384 -> 384 s2 on 3000 frames 0.63-0.73, 256 -> 256 on 1000 0.84-0.90,
// 512 -> 512 s2 on 800 0.85-0.98; fewer streams or a smaller input and
// im2col lost: 64 -> 64 on 2000 1.15, 128 -> 128 on 500 1.06, 32 -> 64 k7
// s2 on 8000 1.28 (80 -> 384 on 3000, 80 streams, about even).
func longRows(g convGeom, cg int) bool {
	return !noLongRows && g.oh == 1 && g.kh == 1 && g.kw > 1 && cg*g.sw >= 128 && cg*g.h*g.w >= 1<<17
}

// noLongRows turns longRows off, for the benchmark that compares.
var noLongRows = false

// minBandMACs is the least work (multiply-adds) worth a band of its own:
// about 2 us on one core, several times what a region costs on the worker
// pool (0.4 us in parallel's BenchmarkFor). Twice that kept ResNet-20's
// 1x1 stride-2 shortcuts (131K multiply-adds) in one band whose GEMM then
// split by columns, reading rows the other thread wrote: 17.7 us at 2
// threads against 11.3 at 1; in two bands 12.6.
const minBandMACs = 1 << 16

// convStripFloats is about how much output (256 KiB) a strip of im2col's
// path computes at a time.
const convStripFloats = 1 << 16

// stridedPointwise reports whether g is a 1x1 convolution with a stride
// above 1 whose every output reads an input pixel (no padding): its im2col
// matrix only gathers those pixels, and a band's matrix multiplies as one
// piece, as a pointwise convolution's input does. On the grid path, which
// lays out every phase, or through im2col in strips sized for 3x3 kernels,
// ResNet-50's 1x1 stride-2 shortcuts ran at 60-73 GFLOP/s against 84 for its
// pointwise layers, and ResNet-20's (16 -> 32 channels on 32x32) took 11.5 us
// where the product alone takes 4.4.
func stridedPointwise(g convGeom) bool {
	return g.kh == 1 && g.kw == 1 && (g.sh > 1 || g.sw > 1) && g.pt == 0 && g.pl == 0 &&
		(g.oh-1)*g.sh < g.h && (g.ow-1)*g.sw < g.w
}

// gatheredGeom is the pointwise convolution a strided 1x1 one (see
// stridedPointwise) computes on the pixels its stride reads.
func gatheredGeom(g convGeom) convGeom {
	return convGeom{c: g.c, h: g.oh, w: g.ow, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: g.oh, ow: g.ow}
}

// gatherStrided lays out the pixels a strided 1x1 convolution reads, each
// image's as its im2col matrix (c rows of oh*ow pixels: the planes of the
// pointwise convolution gatheredGeom describes), in scratch, and returns
// that geometry. ResNet's downsampling shortcuts to a 7x7 map then take the
// co-tiles, whose rows of 7 pixels waste nothing, where im2col's GEMM
// computes 49 pixels as 64 (1024 -> 2048 on 14x14: see coFits).
func gatherStrided(ctx *Context, g convGeom, n, c int, x []float32) (convGeom, []float32) {
	hw, on := g.h*g.w, g.oh*g.ow
	gx := ctx.Scratch(n * c * on)
	for b := 0; b < n; b++ {
		im2col(ctx, g, c, x[b*c*hw:], gx[b*c*on:], 0, g.oh)
	}
	return gatheredGeom(g), gx
}

// convGeom is one convolution's geometry in 2-D.
type convGeom struct {
	c, h, w        int
	kh, kw         int
	sh, sw, dh, dw int
	pt, pl         int
	oh, ow         int
}

// validRange returns the output positions [lo, hi) whose input position
// o*s + k*d - pad lies in [0, size).
func validRange(out, size, s, kOff, pad int) (lo, hi int) {
	// need o*s + kOff - pad >= 0  and  < size
	start := pad - kOff
	lo = 0
	if start > 0 {
		lo = (start + s - 1) / s
	}
	hi = out
	if lim := size - kOff + pad; lim <= 0 {
		hi = 0
	} else if h := (lim + s - 1) / s; h < hi {
		hi = h
	}
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// im2col lays out output rows [y0, y1) of the cg input channels as a
// (cg*kh*kw) x ((y1-y0)*ow) matrix, zero where the kernel falls on padding.
func im2col(ctx *Context, g convGeom, cg int, x, col []float32, y0, y1 int) {
	rows := cg * g.kh * g.kw
	n := (y1 - y0) * g.ow
	// On one thread without a closure for parallelFor, which would be
	// garbage every call (see Session.vals).
	if threads := threadsFor(ctx, rows*n, 1<<16); threads > 1 {
		parallelFor(threads, rows, func(lo, hi int) { im2colRows(g, x, col, y0, y1, n, lo, hi) })
	} else {
		im2colRows(g, x, col, y0, y1, n, 0, rows)
	}
}

// im2colRows is im2col for the column matrix's rows [lo, hi), each n wide.
func im2colRows(g convGeom, x, col []float32, y0, y1, n, lo, hi int) {
	for r := lo; r < hi; r++ {
		ci := r / (g.kh * g.kw)
		ki := (r / g.kw) % g.kh
		kj := r % g.kw
		dst := col[r*n : (r+1)*n]
		src := x[ci*g.h*g.w:]
		ylo, yhi := validRange(g.oh, g.h, g.sh, ki*g.dh, g.pt)
		xlo, xhi := validRange(g.ow, g.w, g.sw, kj*g.dw, g.pl)
		if g.sw == 1 && g.sh == 1 && g.ow == g.w {
			im2colShifted(g, dst, src, y0, y1, ki, kj, ylo, yhi, xlo, xhi)
			continue
		}
		if ylo == 0 && yhi == g.oh && xlo == 0 && xhi == g.ow {
			// The tap never meets padding (a strided 1x1's only tap):
			// a gather per row, nothing to clear.
			ix0 := kj*g.dw - g.pl
			for oy := y0; oy < y1; oy++ {
				iy := oy*g.sh + ki*g.dh - g.pt
				vec.Strided(dst[(oy-y0)*g.ow:(oy-y0+1)*g.ow], src[iy*g.w+ix0:], g.sw)
			}
			continue
		}
		for oy := y0; oy < y1; oy++ {
			drow := dst[(oy-y0)*g.ow : (oy-y0+1)*g.ow]
			if oy < ylo || oy >= yhi || xlo >= xhi {
				clear(drow) // this tap falls on padding for the whole row
				continue
			}
			iy := oy*g.sh + ki*g.dh - g.pt
			srow := src[iy*g.w:]
			clear(drow[:xlo])
			clear(drow[xhi:])
			ix0 := xlo*g.sw + kj*g.dw - g.pl
			vec.Strided(drow[xlo:xhi], srow[ix0:], g.sw)
		}
	}
}

// im2colShifted fills one column-matrix row when output and input rows have
// the same width (stride 1 along x, as in "same" 3x3 convolutions): the row is
// then the input plane shifted by one offset, so one copy moves every valid
// value, and only the columns that fall on padding are zeroed afterwards. On
// small maps this replaces a copy call per output row.
func im2colShifted(g convGeom, dst, src []float32, y0, y1, ki, kj, ylo, yhi, xlo, xhi int) {
	ylo, yhi = max(ylo, y0), min(yhi, y1)
	if ylo >= yhi || xlo >= xhi {
		clear(dst)
		return
	}
	w := g.w
	// dst index j (relative to row y0) reads src[j + y0*w + off].
	off := y0*w + (ki*g.dh-g.pt)*w + kj*g.dw - g.pl
	a := (ylo-y0)*w + xlo
	b := (yhi-1-y0)*w + xhi
	clear(dst[:a])
	clear(dst[b:])
	copy(dst[a:b], src[a+off:b+off])
	if xlo == 0 && xhi == w {
		return
	}
	// The copy wrapped across row ends: zero the padding columns in between
	// (usually one per row, so plain stores beat a clear call).
	for base := (ylo - y0) * w; base < (yhi-y0)*w; base += w {
		row := dst[base : base+w]
		for i := 0; i < xlo; i++ {
			row[i] = 0
		}
		for i := xhi; i < len(row); i++ {
			row[i] = 0
		}
	}
}

// ---- ConvTranspose ----

type convTransposeKernel struct {
	p  *convParams
	ni *NodeInfo
	// packed holds each group's W^T packed once, when the weights are a
	// constant: packing the transposed weights was most of a run for a
	// vocoder's 512-channel k16 s8 upsampling (8 MB each run; 5.2 ms
	// against ORT's 1.05).
	w      *graph.Tensor
	packed []*gemm.PackedA
}

func newConvTranspose(ni *NodeInfo) (Kernel, error) {
	if r := convSpatialRank(ni); r >= 3 {
		return newConvND(ni, r, true)
	}
	p, err := readConvParams(ni, 0)
	if err != nil {
		return nil, err
	}
	k := &convTransposeKernel{p: p, ni: ni}
	if w := ni.Const(1); w != nil && w.DType == graph.Float && w.Rank() >= 3 && p.group > 0 && w.Shape[0]%p.group == 0 {
		cg, kk := w.Shape[0]/p.group, graph.Numel(w.Shape[1:])
		for g := range p.group {
			k.packed = append(k.packed, ni.packs.packAT(kk, cg, w.Float32s()[g*cg*kk:]))
		}
		k.w = w
	}
	return k, nil
}

// convInputs checks a convolution's input and weights and returns them with the
// attributes for this input's rank and both shapes in 2-D form.
func convInputs(in []*graph.Tensor, p *convParams, ni *NodeInfo, op string) (x, w *graph.Tensor, pp *convParams, xs, ws []int, err error) {
	if err = need(in, 2); err != nil {
		return
	}
	x, w = in[0], in[1]
	// The names joined only on the error path: a string a call otherwise.
	if x.DType != graph.Float {
		err = wantFloat(x, op+" input")
		return
	}
	if w.DType != graph.Float {
		err = wantFloat(w, op+" weights")
		return
	}
	if pp, err = paramsFor(p, ni, x); err != nil {
		return
	}
	if xs, err = as4D(x.Shape, pp.spatial); err != nil {
		return
	}
	if ws, err = as4D(w.Shape, pp.spatial); err != nil {
		err = fmt.Errorf("weights: %v", err)
	}
	return
}

// paramsFor re-reads the attributes when the input's rank shows a different
// spatial rank than compile time could know.
func paramsFor(p *convParams, ni *NodeInfo, x *graph.Tensor) (*convParams, error) {
	if x.Rank()-2 == p.spatial || x.Rank() < 3 {
		return p, nil
	}
	return readConvParams(ni, x.Rank()-2)
}

func (k *convTransposeKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if nd, err := ndAtRunTime(k.ni, in, true); nd != nil || err != nil {
		return runOr(ctx, nd, in, err)
	}
	x, w, p, xs, ws, err := convInputs(in, k.p, k.ni, "ConvTranspose")
	if err != nil {
		return nil, err
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	cw, mg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	g := p.group
	if cw != c || c%g != 0 {
		return nil, fmt.Errorf("input has %d channels, weights have %d (groups %d)", c, cw, g)
	}
	cg := c / g
	m := mg * g
	// Output size and pads, per axis (ONNX ConvTranspose rules).
	axis := func(in, k, s, d, outPad, pb, pe int, target int64, hasTarget bool) (out, padB int) {
		full := s*(in-1) + outPad + (k-1)*d + 1
		if !hasTarget {
			switch p.autoPad {
			case "SAME_UPPER", "SAME_LOWER":
				target, hasTarget = int64(in*s), true
			}
		}
		if hasTarget {
			// The spec's split of the total padding, with Python's floor division:
			// a negative total (a larger output_shape) pads only the end.
			total := full - int(target)
			half := floorDiv(total, 2)
			if p.autoPad == "SAME_UPPER" {
				return int(target), half
			}
			return int(target), total - half
		}
		return full - pb - pe, pb
	}
	var oh, ow, pt, pl int
	hasOS := len(p.outShape) > 0
	if hasOS && len(p.outShape) != p.spatial {
		return nil, fmt.Errorf("output_shape has %d values for a %d-D convolution", len(p.outShape), p.spatial)
	}
	if p.spatial == 1 {
		oh, pt = 1, 0
		var t int64
		if hasOS {
			t = p.outShape[0]
		}
		ow, pl = axis(wd, kw, p.sw, p.dw, p.outPadW, p.padL, p.padR, t, hasOS)
	} else {
		var th, tw int64
		if hasOS {
			th, tw = p.outShape[0], p.outShape[1]
		}
		oh, pt = axis(h, kh, p.sh, p.dh, p.outPadH, p.padT, p.padB, th, hasOS)
		ow, pl = axis(wd, kw, p.sw, p.dw, p.outPadW, p.padL, p.padR, tw, hasOS)
	}
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("output size %dx%d is not positive", oh, ow)
	}
	var bias []float32
	if len(in) > 2 && in[2] != nil {
		if in[2].Len() != m {
			return nil, fmt.Errorf("bias has %d values, want %d", in[2].Len(), m)
		}
		bias = in[2].Float32s()
	}
	outShape := []int{n, m, oh, ow}
	if p.spatial == 1 {
		outShape = []int{n, m, ow}
	}
	out := ctx.Float32(outShape) // col2im starts each plane from its bias
	od, xd, wdd := out.Float32s(), x.Float32s(), w.Float32s()
	kk := mg * kh * kw
	hw := h * wd
	col := ctx.Scratch(kk * hw)
	defer ctx.Release(col)
	geo := convGeom{c: mg, h: oh, w: ow, kh: kh, kw: kw, sh: p.sh, sw: p.sw, dh: p.dh, dw: p.dw, pt: pt, pl: pl, oh: h, ow: wd}
	for b := 0; b < n; b++ {
		for gi := 0; gi < g; gi++ {
			// col = W_g^T (kk x cg) * X_g (cg x hw)
			xg := gemm.Matrix{Data: xd[(b*c+gi*cg)*hw:], Stride: hw}
			if k.packed != nil && w == k.w {
				gemm.MulPackedA(k.packed[gi], hw, xg, 0, col, hw, ctx.Threads)
			} else {
				wg := gemm.Matrix{Data: wdd[gi*cg*kk:], Stride: kk, Trans: true}
				gemm.Sgemm(kk, hw, cg, 1, wg, xg, 0, col, hw, ctx.Threads)
			}
			og := od[(b*m+gi*mg)*oh*ow : (b*m+gi*mg+mg)*oh*ow]
			var bg []float32
			if bias != nil {
				bg = bias[gi*mg : (gi+1)*mg]
			}
			col2im(ctx, geo, col, og, bg)
		}
	}
	return one(out), nil
}

// col2im scatter-adds a (c*kh*kw) x (ih*iw) column matrix into a c x h x w image,
// each of whose planes it first sets to the channel's bias (zero for nil bias):
// the adjoint of im2col, with g.oh x g.ow the column grid and g.h x g.w the image.
// Threads take whole channels, whose taps add into one plane.
func col2im(ctx *Context, g convGeom, col, img, bias []float32) {
	n := g.oh * g.ow
	taps := g.kh * g.kw
	plane := g.h * g.w
	parallelFor(threadsFor(ctx, g.c*taps*n, 1<<15), g.c, func(c0, c1 int) {
		// Each channel's plane starts from its bias (or zero) on the thread
		// that then adds its taps: one pass less over the output, and split.
		for ci := c0; ci < c1; ci++ {
			v := float32(0)
			if bias != nil {
				v = bias[ci]
			}
			fillSlice(img[ci*plane:(ci+1)*plane], v)
		}
		for r := c0 * taps; r < c1*taps; r++ {
			ci := r / taps
			ki := (r / g.kw) % g.kh
			kj := r % g.kw
			src := col[r*n : (r+1)*n]
			dst := img[ci*g.h*g.w:]
			ylo, yhi := validRange(g.oh, g.h, g.sh, ki*g.dh, g.pt)
			xlo, xhi := validRange(g.ow, g.w, g.sw, kj*g.dw, g.pl)
			for oy := ylo; oy < yhi; oy++ {
				iy := oy*g.sh + ki*g.dh - g.pt
				drow := dst[iy*g.w:]
				srow := src[oy*g.ow:]
				// A row's adds in vector loops for strides 1 and 2 (the
				// upsampling decoders' k2s2, k4s2), the same one add each.
				off, nx := kj*g.dw-g.pl, xhi-xlo
				switch {
				case nx <= 0:
				case g.sw == 1:
					d := drow[xlo+off : xhi+off]
					vec.Add(d, d, srow[xlo:xhi])
				case g.sw == 2:
					vec.AddEveryOther(drow[2*xlo+off:2*xlo+off+2*nx-1], srow[xlo:xhi])
				default:
					for ox := xlo; ox < xhi; ox++ {
						drow[ox*g.sw+off] += srow[ox]
					}
				}
			}
		}
	})
}

func init() {
	Register("", "Conv", 1, newConv)
	Register("", "ConvTranspose", 1, newConvTranspose)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// planeOffs are the offsets of c input planes of plane floats each.
type planeOffs struct {
	plane int
	offs  []int
}

// planeOffs returns c plane offsets plane floats apart, kept from call to
// call (a pointwise convolution runs on one geometry).
func (k *convKernel) planeOffs(c, plane int) []int {
	if p := k.pwOffs.Load(); p != nil && p.plane == plane && len(p.offs) == c {
		return p.offs
	}
	p := &planeOffs{plane: plane, offs: make([]int, c)}
	for i := range p.offs {
		p.offs[i] = i * plane
	}
	k.pwOffs.Store(p)
	return p.offs
}

// gridLayoutFor is the input layout of the grid and co-tile paths for geo,
// kept from call to call.
func (k *convKernel) gridLayoutFor(geo convGeom, cg int) *gridLayout {
	l := k.layout.Load()
	if l == nil || l.geo != geo || l.cg != cg {
		l = newGridLayout(geo, cg)
		k.layout.Store(l)
	}
	return l
}

// noReluStores runs a Conv's Relu as a pass after the product instead of
// in the GEMM's stores, for the tests and benchmarks that compare.
var noReluStores = false

// isReluEpilogue reports whether e is exactly a Relu: x*1 + -0 is x for
// every x (-0 and NaN included), then clamped below at 0 and not above,
// which the tile kernels' clamp (accRelu) computes bit for bit.
func isReluEpilogue(e vec.Epilogue) bool {
	return e.Mul == 1 && math.Float32bits(e.Add) == 0x80000000 && math.Float32bits(e.Lo) == 0 && math.IsInf(float64(e.Hi), 1)
}

// pointwiseTiles keeps pointwise convolutions on the 12-row tiles, for the
// benchmark that compares the two.
var pointwiseTiles = false

// pointwiseWholeK keeps pointwise convolutions on their whole-k packing
// (gemm.PackA), for the benchmark that compares the two.
var pointwiseWholeK = false

// streamedPlane is the smallest map (pixels) on which a pointwise
// convolution reads its input in k blocks of 32 (gemm.PackAStreamed): its
// input's rows are then a few pages apart, too many streams at once for the
// prefetchers. Below that the rows are close and the extra passes over C
// cost more than they save (see BenchmarkPointwiseKBlocks).
const streamedPlane = 2048
