package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// poolParams are MaxPool/AveragePool attributes in 2-D form (1-D pools get unit height).
type poolParams struct {
	kh, kw, sh, sw, dh, dw int
	padT, padL, padB, padR int
	autoPad                string
	ceil                   bool
	countIncludePad        bool
	spatial                int
	columnMajor            bool // storage_order 1: MaxPool indices in column-major order
}

func readPoolParams(ni *NodeInfo) (*poolParams, error) {
	a := attrsOf(ni.Node)
	ks := a.Ints("kernel_shape", nil)
	st := a.Ints("strides", nil)
	dl := a.Ints("dilations", nil)
	pads := a.Ints("pads", nil)
	p := &poolParams{autoPad: a.String("auto_pad", "NOTSET"), ceil: a.Int("ceil_mode", 0) != 0,
		countIncludePad: a.Int("count_include_pad", 0) != 0}
	p.columnMajor = a.Int("storage_order", 0) != 0
	if a.err != nil {
		return nil, a.err
	}
	p.spatial = len(ks)
	if p.spatial < 1 || p.spatial > 2 {
		return nil, fmt.Errorf("only 1-D and 2-D pooling is supported, kernel_shape %v", ks)
	}
	pick := func(v []int64, def int) (int, int, error) {
		if v == nil {
			return def, def, nil
		}
		if len(v) != p.spatial {
			return 0, 0, fmt.Errorf("attribute %v does not fit kernel_shape %v", v, ks)
		}
		if p.spatial == 1 {
			return def, int(v[0]), nil
		}
		return int(v[0]), int(v[1]), nil
	}
	var err error
	if p.kh, p.kw, err = pick(ks, 1); err != nil {
		return nil, err
	}
	if p.spatial == 1 {
		p.kh = 1
	}
	if p.sh, p.sw, err = pick(st, 1); err != nil {
		return nil, err
	}
	if p.dh, p.dw, err = pick(dl, 1); err != nil {
		return nil, err
	}
	if pads != nil {
		if len(pads) != 2*p.spatial {
			return nil, fmt.Errorf("pads %v do not fit kernel_shape %v", pads, ks)
		}
		if p.spatial == 1 {
			p.padL, p.padR = int(pads[0]), int(pads[1])
		} else {
			p.padT, p.padL, p.padB, p.padR = int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
		}
	}
	if p.spatial == 1 {
		p.sh, p.dh = 1, 1
	}
	return p, nil
}

// poolOut is the pooled size of one axis and its leading padding.
func poolOut(in, k, s, d, pb, pe int, autoPad string, ceil bool) (int, int) {
	ek := d*(k-1) + 1
	switch autoPad {
	case "VALID":
		return (in-ek)/s + 1, 0
	case "SAME_UPPER", "SAME_LOWER":
		out := (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if autoPad == "SAME_UPPER" {
			return out, total / 2
		}
		return out, total - total/2
	}
	num := in + pb + pe - ek
	out := num/s + 1
	if ceil {
		out = (num+s-1)/s + 1
		// The last window must start inside the input or the leading padding.
		if (out-1)*s >= in+pb {
			out--
		}
	}
	return out, pb
}

func newPool(kind string) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		p, err := readPoolParams(ni)
		if err != nil {
			return nil, err
		}
		if kind == "avg" && (p.dh != 1 || p.dw != 1) && ni.Opset < 19 {
			return nil, fmt.Errorf("AveragePool dilations need opset 19")
		}
		wantIndices := len(ni.Node.Outputs) > 1 && ni.Node.Outputs[1] != nil
		var ctxRun func(ctx *Context, x *graph.Tensor) ([]*graph.Tensor, error)
		k := KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if kind == "max" && (x.DType == graph.Int8 || x.DType == graph.Uint8) {
				// Exact through float32; quantized graphs pool int8/uint8 directly.
				return viaCast(x, graph.Float, func(f *graph.Tensor) ([]*graph.Tensor, error) { return ctxRun(ctx, f) })
			}
			if err := wantFloat(x, "pool input"); err != nil {
				return nil, err
			}
			xs, err := as4D(x.Shape, p.spatial)
			if err != nil {
				return nil, err
			}
			n, c, h, w := xs[0], xs[1], xs[2], xs[3]
			oh, pt := poolOut(h, p.kh, p.sh, p.dh, p.padT, p.padB, p.autoPad, p.ceil)
			ow, pl := poolOut(w, p.kw, p.sw, p.dw, p.padL, p.padR, p.autoPad, p.ceil)
			if oh <= 0 || ow <= 0 {
				return nil, fmt.Errorf("input %dx%d is too small for the pooling window", h, w)
			}
			shape := []int{n, c, oh, ow}
			if p.spatial == 1 {
				shape = []int{n, c, ow}
			}
			out := graph.NewTensor(graph.Float, shape)
			xd, od := x.Float32s(), out.Float32s()
			// MaxPool's optional second output: the flat index of each maximum in
			// the input (row-major, or column-major within each plane).
			var indices []int64
			var idxT *graph.Tensor
			if kind == "max" && wantIndices {
				idxT = graph.NewTensor(graph.Int64, shape)
				indices = idxT.Int64s()
			}
			// Explicit pads bound the window for count_include_pad; beyond them
			// (ceil mode), positions never count.
			hEnd, wEnd := h+p.padB, w+p.padR
			if p.autoPad != "NOTSET" {
				hEnd, wEnd = h+(oh-1)*p.sh+(p.dh*(p.kh-1)+1)-h-pt, w+(ow-1)*p.sw+(p.dw*(p.kw-1)+1)-w-pl
				hEnd, wEnd = max(hEnd, h), max(wEnd, w)
			}
			parallelFor(threadsFor(ctx, n*c*oh*ow*p.kh*p.kw, 1<<14), n*c, func(lo, hi int) {
				for nc := lo; nc < hi; nc++ {
					src := xd[nc*h*w : (nc+1)*h*w]
					dst := od[nc*oh*ow : (nc+1)*oh*ow]
					for oy := 0; oy < oh; oy++ {
						for ox := 0; ox < ow; ox++ {
							y0, x0 := oy*p.sh-pt, ox*p.sw-pl
							best := float32(math.Inf(-1))
							bestAt := -1
							var sum float32
							cnt, padCnt := 0, 0
							for ki := 0; ki < p.kh; ki++ {
								iy := y0 + ki*p.dh
								for kj := 0; kj < p.kw; kj++ {
									ix := x0 + kj*p.dw
									if iy < 0 || iy >= h || ix < 0 || ix >= w {
										if iy >= -p.padT && iy < hEnd && ix >= -p.padL && ix < wEnd {
											padCnt++
										}
										continue
									}
									v := src[iy*w+ix]
									if v > best || v != v || bestAt < 0 {
										best = v
										if p.columnMajor {
											bestAt = ix*h + iy
										} else {
											bestAt = iy*w + ix
										}
									}
									sum += v
									cnt++
								}
							}
							if kind == "max" {
								dst[oy*ow+ox] = best
								if indices != nil {
									indices[nc*oh*ow+oy*ow+ox] = int64(nc*h*w + bestAt)
								}
							} else {
								div := cnt
								if p.countIncludePad {
									div += padCnt
								}
								if div > 0 {
									dst[oy*ow+ox] = sum / float32(div)
								}
							}
						}
					}
				}
			})
			if idxT != nil {
				return []*graph.Tensor{out, idxT}, nil
			}
			return one(out), nil
		})
		ctxRun = func(ctx *Context, x *graph.Tensor) ([]*graph.Tensor, error) { return k(ctx, []*graph.Tensor{x}) }
		return k, nil
	}
}

// viaCast runs f on x cast to dt and casts the first output back to x's type.
func viaCast(x *graph.Tensor, dt graph.DataType, f func(*graph.Tensor) ([]*graph.Tensor, error)) ([]*graph.Tensor, error) {
	c, err := castTensor(x, dt)
	if err != nil {
		return nil, err
	}
	outs, err := f(c)
	if err != nil {
		return nil, err
	}
	back, err := castTensor(outs[0], x.DType)
	if err != nil {
		return nil, err
	}
	outs[0] = back
	return outs, nil
}

func newGlobalPool(kind string) Factory {
	return func(*NodeInfo) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if err := wantFloat(x, "pool input"); err != nil {
				return nil, err
			}
			if x.Rank() < 3 {
				return nil, fmt.Errorf("global pooling needs rank >= 3, got %v", x.Shape)
			}
			nc := x.Shape[0] * x.Shape[1]
			plane := graph.Numel(x.Shape[2:])
			shape := []int{x.Shape[0], x.Shape[1]}
			for range x.Shape[2:] {
				shape = append(shape, 1)
			}
			out := graph.NewTensor(graph.Float, shape)
			xd, od := x.Float32s(), out.Float32s()
			parallelFor(threadsFor(ctx, nc*plane, 1<<15), nc, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					row := xd[i*plane : (i+1)*plane]
					if kind == "max" {
						best := float32(math.Inf(-1))
						for _, v := range row {
							if v > best {
								best = v
							}
						}
						od[i] = best
						continue
					}
					var s float32
					for _, v := range row {
						s += v
					}
					od[i] = s / float32(plane)
				}
			})
			return one(out), nil
		}), nil
	}
}

func init() {
	Register("", "MaxPool", 1, newPool("max"))
	Register("", "AveragePool", 1, newPool("avg"))
	Register("", "GlobalAveragePool", 1, newGlobalPool("avg"))
	Register("", "GlobalMaxPool", 1, newGlobalPool("max"))
}
