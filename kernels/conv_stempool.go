package kernels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/vec"
)

// A network's stem convolution is often followed by a 3x3 stride-2
// MaxPool (ResNet, SqueezeNet, ShuffleNet, GoogLeNet): the Conv writes a
// large map (SqueezeNet's 64x111x111, 3.2 MB) that the pool reads once and
// shrinks to a quarter. Both run here as one step: each strip of the stem
// path's output rows is pooled while it is in L2, so the full map is never
// written out and read back. In SqueezeNet on the Zen 5 VM the stem alone
// took 0.35-0.37 ms but 0.54-0.60 in the model (its output stored past the
// cache), and ONNX Runtime's stem and pool together 0.33. Whole models,
// paired in one process, fused against unfused: SqueezeNet 0.96-0.97 of the
// time at 1 thread, 0.94-0.97 at 2; ShuffleNet 0.91-0.94 and 0.97-0.98;
// ResNet-50 within its noise (-0.5% to +1%).
//
// The pool is max3x3s2, the unfused MaxPool's own kernel, over the strip's
// rows as a plane, so the bits are the unfused ones: rows above or below the
// map are the plane's missing rows, and columns computed past the map (the
// stem path computes rows a multiple of 8 wide) hold -inf where a window
// reaches them, which drops out of a max as a column left out does.

// stemPool is a MaxPool fused into the Conv that feeds it (see above).
type stemPool struct {
	p    *poolParams
	conv Kernel // the Conv (and its epilogue) without the pool
	pool Kernel // the MaxPool's own kernel
}

// noStemPools keeps MaxPools unfused, for the tests and benchmarks that
// compare.
var noStemPools = false

// fusesStemPool reports whether a MaxPool of these attributes fuses.
func fusesStemPool(p *poolParams) bool {
	return p.spatial == 2 && p.kh == 3 && p.kw == 3 && p.sh == 2 && p.sw == 2 && p.dh == 1 && p.dw == 1
}

// fuseStemPools folds 3x3 stride-2 MaxPools into the stem Convs that feed
// them; outputs holds the slots the caller sees (graph outputs and taps).
func (s *Session) fuseStemPools(outputs map[int]bool) {
	if noStemPools {
		return
	}
	producer, readers := s.stepLinks()
	drop := map[int]bool{}
	for pi, st := range s.steps {
		n := st.node
		if n.OpType != "MaxPool" || !graph.IsStandardDomain(n.Domain) || len(st.in) != 1 || st.in[0] < 0 || len(st.out) != 1 || st.out[0] < 0 {
			continue
		}
		a := st.in[0]
		ci, ok := producer[a]
		if !ok || outputs[a] || len(readers[a]) != 1 {
			continue
		}
		ck, ok := s.steps[ci].k.(*convKernel)
		// A stem: constant 2-D weights over at most stemMaxChannels input
		// channels, an epilogue (if any) one per channel, no shortcut.
		if !ok || ck.pool != nil || ck.res != nil || ck.cp == nil || ck.wConst.Rank() != 4 || !stemFits(ck.wConst.Shape[1]) ||
			ck.epilogue != nil && ck.eps == nil || len(s.steps[ci].out) != 1 {
			continue
		}
		p, err := readPoolParams(st.ni)
		if err != nil || !fusesStemPool(p) {
			continue
		}
		c := *ck
		c.pool = &stemPool{p: p, conv: ck, pool: st.k}
		cs := &s.steps[ci]
		cs.k = &c
		cs.out = []int{st.out[0]}
		cs.node = n
		drop[pi] = true
	}
	kept := s.steps[:0]
	for i, st := range s.steps {
		if !drop[i] {
			kept = append(kept, st)
		}
	}
	s.steps = kept
}

// runPooled is Run for a Conv with a fused MaxPool: the stem path pools its
// strips as it goes; any other path computes the convolution whole and
// pools it after.
func (k *convKernel) runPooled(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if cc, err := k.setup(in); err == nil { // else the unfused Conv says why
		if pg, ok := k.stemPooled(in, cc); ok {
			out := ctx.Float32([]int{cc.n, cc.m, pg.oh, pg.ow})
			runStemPool(ctx, k.layoutOf(cc), pg, cc, out.Float32s(), k.cp.A(), k.cp.Narrow(), k.eps, k.reluStores)
			return one(out), nil
		}
	}
	// A Concat's place for the pooled output is not the Conv's, whatever
	// its shape: the Conv's output is a temporary given back below.
	place := ctx.place.Swap(nil)
	conv, err := k.pool.conv.Run(ctx, in)
	ctx.place.Store(place)
	if err != nil {
		return nil, err
	}
	res, err := k.pool.pool.Run(ctx, conv)
	recycleTemp(ctx, conv[0])
	return res, err
}

// layoutOf is the stem path's strip layout for the call, with capacity for
// a pooled strip (see runStemPool).
func (k *convKernel) layoutOf(cc convCall) *stemLayout {
	l := k.gridLayoutFor(cc.geo, cc.cg)
	narrow := k.cp.hasNarrow
	if s := l.stemPool.Load(); s != nil && s.mg == cc.mg && s.narrow == narrow {
		return s
	}
	// Strips of twice the stem path's rows: pooled 4 rows a strip (a
	// strip's buffer 256 KiB), SqueezeNet's stem and pool alone took 0.88x
	// the time of 2 rows; 3 and 4 rows were no faster.
	base := newStemLayout(cc.geo, cc.cg, cc.mg, narrow, 0)
	s := newStemLayout(cc.geo, cc.cg, cc.mg, narrow, 2*base.rows+1)
	l.stemPool.Store(s)
	return s
}

// stemPooled reports whether the call takes the stem path that run would
// take unfused, and the pool's geometry over its output.
func (k *convKernel) stemPooled(in []*graph.Tensor, cc convCall) (*poolGeom, bool) {
	if cc.p.spatial != 2 || k.pathOf(in, cc, false) != pathStem {
		return nil, false
	}
	pg, err := k.pool.p.geometry(cc.geo.oh, cc.geo.ow)
	if err != nil {
		return nil, false // the unfused pool says why
	}
	return pg, true
}

// runStemPool computes the convolution of cc strip by strip as runStem
// does and pools each strip into od (the MaxPool's output) while it is in
// cache. A strip's buffer holds, per channel, conv rows top .. top+2r of r
// pooled rows (cols apart), the first of them the last of the strip before
// (carried, not computed again); the pool runs on it as max3x3s2, the
// unfused MaxPool's kernel, over a plane of those rows, its columns past ow
// set to -inf. Threads take bands of pooled rows; the conv row two bands
// share is computed by both.
func runStemPool(ctx *Context, l *stemLayout, pg *poolGeom, cc convCall, od []float32, packs, narrow []*gemm.PackedA, eps []vec.Epilogue, reluStores bool) {
	geo, cg, mg, g, n := l.geo, l.cg, cc.mg, cc.g, cc.n
	oh, ow, cols := geo.oh, geo.ow, l.cols
	plane := geo.h * geo.w
	halo := l.hs - l.rows
	kk := cg * geo.kh * geo.kw
	xd, bias := cc.x.Float32s(), cc.bias
	poh, pow := pg.oh, pg.ow
	pplane := poh * pow
	r := max(1, (l.rows-1)/2) // pooled rows a strip: 2r+1 conv rows
	ldd := (2*r + 1) * cols   // a channel's rows in the strip buffer
	sb := newStemBands(ctx, n, g, poh, mg*kk*oh*ow)
	workers := sb.workers
	bufN, stripN := cg*l.cs, mg*ldd
	seatN := bufN + stripN
	scratch := ctx.seatScratch(workers, seatN)
	defer ctx.Release(scratch.buf)
	inf := float32(math.Inf(-1))
	relu := reluStores && bias != nil && !noReluStores
	// Whether a window reaches the columns computed past the map (ceil
	// mode, right padding), which then hold -inf.
	pastMap := 2*pow-pg.pl >= ow && cols > ow

	// band pools rows [q0, q1) of group gi of image b with one seat's buffers.
	band := func(b, gi, q0, q1 int, buf, strip []float32) {
		xg := xd[(b*cc.c+gi*cg)*plane:]
		og := od[(b*g*mg+gi*mg)*pplane:]
		var bs []float32
		if bias != nil {
			bs = bias[gi*mg : (gi+1)*mg]
		}
		for s0 := q0; s0 < q1; s0 += r {
			s1 := min(q1, s0+r)
			top := 2*s0 - pg.pt // the conv row at the strip's row 0
			end := min(oh, top+2*(s1-s0)+1)
			lo := max(0, top)
			if s0 > q0 && top >= 0 { // computed as the last row of the strip before
				for i := 0; i < mg; i++ {
					c := strip[i*ldd:]
					copy(c[:cols], c[2*r*cols:(2*r+1)*cols])
				}
				lo++
			}
			for y0 := lo; y0 < end; y0 += l.rows {
				y1 := min(end, y0+l.rows)
				l.fill(xg, buf, y0, min(l.hq, y1+halo))
				grid := gemm.Grid{Data: buf, Offs: l.offs, Rows: y1 - y0, Cols: cols, RowStride: l.wq}
				at := (y0 - top) * cols
				stemGEMM(packs[gi], narrow, gi, grid, bs, strip[at:], ldd, relu)
				for i := 0; i < mg; i++ {
					rows := strip[i*ldd+at : i*ldd+at+(y1-y0)*cols]
					if eps != nil && !relu {
						eps[gi*mg+i].Apply(rows)
					}
					for y := 0; pastMap && y < y1-y0; y++ {
						for x := ow; x < cols; x++ {
							rows[y*cols+x] = inf
						}
					}
				}
			}
			if end <= lo && lo == max(0, top) { // no row of the map (pads of 3 or more)
				for i := 0; i < mg; i++ {
					fillSlice(og[i*pplane+s0*pow:i*pplane+s1*pow], inf)
				}
				continue
			}
			// The strip's rows as a plane: rows top .. end-1 that exist.
			sg := *pg
			sg.h, sg.w, sg.oh, sg.pt = end-max(0, top), cols, s1-s0, max(0, -top)
			for i := 0; i < mg; i++ {
				max3x3s2(&sg, strip[i*ldd+sg.pt*cols:], og[i*pplane+s0*pow:], 0, 1)
			}
		}
	}
	seat := func(seat int) (buf, strip []float32) {
		s := scratch.at(seat)
		return s[:bufN], s[bufN:]
	}
	sb.run(func(i int) {
		buf, _ := seat(i)
		clear(buf) // fill never writes the strip buffer's padding columns
	}, func(i, b, gi, q0, q1 int) {
		buf, strip := seat(i)
		band(b, gi, q0, q1, buf, strip)
	})
}
