package testmodels

import (
	"math"
	"math/rand/v2"
	"sync"
)

// A probe is the builder's own small forward pass. With Builder.Probe on, every
// image op the builder adds is also computed, in plain Go, on a few sample
// images (the distribution of Samples), so that each BatchNormalization gets
// the running statistics of the activations it really sees and each head the
// real scale of its features, as after training. Estimating them analytically
// is not enough: errors in the estimated means and the correlations between
// channels compound over tens of layers.

// act is a probe activation in NCHW (a 2-D [N, C] tensor is N x C x 1 x 1).
type act struct {
	n, c, h, w int
	d          []float32
}

func newAct(n, c, h, w int) *act { return &act{n, c, h, w, make([]float32, n*c*h*w)} }

func (a *act) plane(n, c int) []float32 {
	hw := a.h * a.w
	return a.d[(n*a.c+c)*hw : (n*a.c+c+1)*hw]
}

// channelStats returns the mean and variance of each channel over samples and
// positions, as BatchNormalization's running statistics measure them.
func (a *act) channelStats() (mean, variance []float64) {
	mean, variance = make([]float64, a.c), make([]float64, a.c)
	cnt := float64(a.n * a.h * a.w)
	for c := 0; c < a.c; c++ {
		var s1, s2 float64
		for n := 0; n < a.n; n++ {
			for _, v := range a.plane(n, c) {
				s1 += float64(v)
				s2 += float64(v) * float64(v)
			}
		}
		mean[c] = s1 / cnt
		variance[c] = math.Max(s2/cnt-mean[c]*mean[c], 1e-12)
	}
	return mean, variance
}

func (a *act) mapf(f func(float64) float64) *act {
	if a == nil {
		return nil
	}
	out := &act{a.n, a.c, a.h, a.w, make([]float32, len(a.d))}
	for i, v := range a.d {
		out.d[i] = float32(f(float64(v)))
	}
	return out
}

// affine applies y = x*k[c] + s[c] per channel (a folded BatchNormalization).
func (a *act) affine(k, s []float32) *act {
	if a == nil {
		return nil
	}
	out := newAct(a.n, a.c, a.h, a.w)
	for n := 0; n < a.n; n++ {
		for c := 0; c < a.c; c++ {
			src, dst := a.plane(n, c), out.plane(n, c)
			for i, v := range src {
				dst[i] = v*k[c] + s[c]
			}
		}
	}
	return out
}

// probeConv is a direct convolution (weights [outC, C/group, k, k]).
func probeConv(x *act, w, bias []float32, outC, k int, o ConvOpts, oh, ow int) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, outC, oh, ow)
	cpg, opg := x.c/o.Group, outC/o.Group
	var wg sync.WaitGroup
	const workers = 2
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for oc := wk; oc < outC; oc += workers {
				g := oc / opg
				for n := 0; n < x.n; n++ {
					dst := out.plane(n, oc)
					if bias != nil {
						for i := range dst {
							dst[i] = bias[oc]
						}
					}
					for ic := 0; ic < cpg; ic++ {
						src := x.plane(n, g*cpg+ic)
						for kh := 0; kh < k; kh++ {
							for kw := 0; kw < k; kw++ {
								wv := w[((oc*cpg+ic)*k+kh)*k+kw]
								// Output columns whose input column ox*stride+off is inside.
								off := kw*o.Dilation - o.Pad
								lo := 0
								if off < 0 {
									lo = (-off + o.Stride - 1) / o.Stride
								}
								hi := min(ow, (x.w-1-off)/o.Stride+1)
								if x.w-1-off < 0 {
									hi = 0
								}
								for oy := 0; oy < oh; oy++ {
									iy := oy*o.Stride - o.Pad + kh*o.Dilation
									if iy < 0 || iy >= x.h || lo >= hi {
										continue
									}
									row, drow := src[iy*x.w:(iy+1)*x.w], dst[oy*ow:(oy+1)*ow]
									if o.Stride == 1 {
										in := row[lo+off : hi+off]
										for i, v := range in {
											drow[lo+i] += wv * v
										}
										continue
									}
									for ox := lo; ox < hi; ox++ {
										drow[ox] += wv * row[ox*o.Stride+off]
									}
								}
							}
						}
					}
				}
			}
		}(wk)
	}
	wg.Wait()
	return out
}

func probeMaxPool(x *act, k, stride, pad, oh, ow int) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, x.c, oh, ow)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			src, dst := x.plane(n, c), out.plane(n, c)
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					m := float32(math.Inf(-1))
					for iy := max(oy*stride-pad, 0); iy < min(oy*stride-pad+k, x.h); iy++ {
						for ix := max(ox*stride-pad, 0); ix < min(ox*stride-pad+k, x.w); ix++ {
							m = max(m, src[iy*x.w+ix])
						}
					}
					dst[oy*ow+ox] = m
				}
			}
		}
	}
	return out
}

func probeConcat(xs []*act) *act {
	c := 0
	for _, x := range xs {
		if x == nil {
			return nil
		}
		c += x.c
	}
	out := newAct(xs[0].n, c, xs[0].h, xs[0].w)
	for n := 0; n < out.n; n++ {
		off := 0
		for _, x := range xs {
			for ch := 0; ch < x.c; ch++ {
				copy(out.plane(n, off+ch), x.plane(n, ch))
			}
			off += x.c
		}
	}
	return out
}

// probeChannels is channels [c0, c1) of x.
func probeChannels(x *act, c0, c1 int) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, c1-c0, x.h, x.w)
	for n := 0; n < x.n; n++ {
		for c := c0; c < c1; c++ {
			copy(out.plane(n, c-c0), x.plane(n, c))
		}
	}
	return out
}

func probeAdd(x, y *act) *act {
	if x == nil || y == nil || len(x.d) != len(y.d) {
		return nil
	}
	out := newAct(x.n, x.c, x.h, x.w)
	for i := range out.d {
		out.d[i] = x.d[i] + y.d[i]
	}
	return out
}

func probeUpsample(x *act, f int) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, x.c, x.h*f, x.w*f)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			src, dst := x.plane(n, c), out.plane(n, c)
			for y := 0; y < out.h; y++ {
				for xx := 0; xx < out.w; xx++ {
					dst[y*out.w+xx] = src[(y/f)*x.w+xx/f]
				}
			}
		}
	}
	return out
}

func probeSubsample2(x *act) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, x.c, (x.h+1)/2, (x.w+1)/2)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			src, dst := x.plane(n, c), out.plane(n, c)
			for y := 0; y < out.h; y++ {
				for xx := 0; xx < out.w; xx++ {
					dst[y*out.w+xx] = src[2*y*x.w+2*xx]
				}
			}
		}
	}
	return out
}

func probePadChannels(x *act, before, after int) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, x.c+before+after, x.h, x.w)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			copy(out.plane(n, before+c), x.plane(n, c))
		}
	}
	return out
}

func probeGAP(x *act) *act {
	if x == nil {
		return nil
	}
	out := newAct(x.n, x.c, 1, 1)
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			var s float64
			for _, v := range x.plane(n, c) {
				s += float64(v)
			}
			out.d[n*x.c+c] = float32(s / float64(x.h*x.w))
		}
	}
	return out
}

// probeImages draws n image-like samples (see imageLike) of c x h x w.
func probeImages(r *rand.Rand, n, c, h, w int) *act {
	a := newAct(n, c, h, w)
	imageLikeData(r, a.d, n, c, h, w)
	return a
}
