package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// roiAlignRef is RoiAlign as it was before bins became merged taps
// (roiTaps): every channel's bin summed sample by sample from four
// corners, in float64. The reference the kernel is held to.
func roiAlignRef(xd []float32, xs []int, rd []float32, bi []int, mode string, oh, ow, ratio int, scale float32, halfPixel bool) []float32 {
	c, h, w := xs[1], xs[2], xs[3]
	nr := len(bi)
	od := make([]float32, nr*c*oh*ow)
	plane, bins := h*w, oh*ow
	for r := range nr {
		g := newRoiGrid(rd[r*4:r*4+4], scale, halfPixel, oh, ow, ratio)
		samples := roiRefSamples(g, h, w)
		per := g.gh * g.gw
		count := float64(max(per, 1))
		for ch := 0; ch < c; ch++ {
			src := xd[(bi[r]*c+ch)*plane : (bi[r]*c+ch+1)*plane]
			dst := od[(r*c+ch)*bins : (r*c+ch+1)*bins]
			for b := range dst {
				var v float64
				if mode == "avg" {
					for _, s := range samples[b*per : (b+1)*per] {
						v += s.w[0]*float64(src[s.p[0]]) + s.w[1]*float64(src[s.p[1]]) +
							s.w[2]*float64(src[s.p[2]]) + s.w[3]*float64(src[s.p[3]])
					}
					v /= count
				} else {
					for k, s := range samples[b*per : (b+1)*per] {
						m := max(s.w[0]*float64(src[s.p[0]]), s.w[1]*float64(src[s.p[1]]),
							s.w[2]*float64(src[s.p[2]]), s.w[3]*float64(src[s.p[3]]))
						if k == 0 || m > v {
							v = m
						}
					}
				}
				dst[b] = float32(v)
			}
		}
	}
	return od
}

func roiRefSamples(g roiGrid, h, w int) []roiSample {
	var dst []roiSample
	for ph := 0; ph < g.oh; ph++ {
		for pw := 0; pw < g.ow; pw++ {
			for iy := 0; iy < g.gh; iy++ {
				y := g.y0 + float32(ph)*g.bh + (float32(iy)+0.5)*g.bh/float32(g.gh)
				for ix := 0; ix < g.gw; ix++ {
					x := g.x0 + float32(pw)*g.bw + (float32(ix)+0.5)*g.bw/float32(g.gw)
					dst = append(dst, roiRefBilinear(float64(y), float64(x), h, w))
				}
			}
		}
	}
	return dst
}

func roiRefBilinear(y, x float64, h, w int) roiSample {
	if !(y >= -1 && y <= float64(h) && x >= -1 && x <= float64(w)) {
		return roiSample{}
	}
	y, x = math.Max(y, 0), math.Max(x, 0)
	yl, xl := int(y), int(x)
	yh, xh := yl+1, xl+1
	if yl >= h-1 {
		yl, yh, y = h-1, h-1, float64(h-1)
	}
	if xl >= w-1 {
		xl, xh, x = w-1, w-1, float64(w-1)
	}
	ly, lx := y-float64(yl), x-float64(xl)
	hy, hx := 1-ly, 1-lx
	return roiSample{
		p: [4]int{yl*w + xl, yl*w + xh, yh*w + xl, yh*w + xh},
		w: [4]float64{hy * hx, hy * lx, ly * hx, ly * lx},
	}
}

// RoiAlign's merged taps give roiAlignRef's averages within float64
// rounding (float32 results at most an ulp apart, and the same where the
// value is not finite), its max mode to the bit, on one thread and two, for
// every sampling ratio (0: adaptive), both coordinate transforms, rois
// inside, across and outside the map, and maps with Inf and NaN pixels.
func TestRoiAlignMatchesOldPath(t *testing.T) {
	defer parallel.ForceSplit(parallel.ForcedSplit())
	rng := rand.New(rand.NewPCG(31, 32))
	for i := range 300 {
		n, c, h, w := 1+rng.IntN(2), 1+rng.IntN(6), 1+rng.IntN(12), 1+rng.IntN(12)
		xs := []int{n, c, h, w}
		xd := make([]float32, graph.Numel(xs))
		for j := range xd {
			xd[j] = float32(rng.NormFloat64() * 3)
			if i%3 == 0 {
				switch rng.IntN(80) {
				case 0:
					xd[j] = float32(math.Inf(1 - 2*rng.IntN(2)))
				case 1:
					xd[j] = float32(math.NaN())
				case 2:
					xd[j] = float32(math.Copysign(0, -1))
				}
			}
		}
		nr := 1 + rng.IntN(6)
		scale := []float32{1, 0.5, 0.25, 0.125}[rng.IntN(4)]
		rd := make([]float32, 4*nr)
		bi := make([]int64, nr)
		for r := range nr {
			// corners from well outside the map to well past it, some rois
			// empty or reversed
			for k := range 4 {
				size := float32([]int{w, h}[k%2]) / scale
				rd[4*r+k] = float32(math.Round(rng.Float64()*1.6*float64(size)-0.3*float64(size))*4) / 4
			}
			if rng.IntN(3) > 0 {
				rd[4*r], rd[4*r+2] = min(rd[4*r], rd[4*r+2]), max(rd[4*r], rd[4*r+2])
				rd[4*r+1], rd[4*r+3] = min(rd[4*r+1], rd[4*r+3]), max(rd[4*r+1], rd[4*r+3])
			}
			bi[r] = int64(rng.IntN(n))
		}
		oh, ow, ratio := 1+rng.IntN(4), 1+rng.IntN(4), rng.IntN(4)
		half := rng.IntN(2) == 0
		ctm := map[bool]string{true: "half_pixel", false: "output_half_pixel"}[half]
		bis := make([]int, nr)
		for r := range bi {
			bis[r] = int(bi[r])
		}
		for _, mode := range []string{"avg", "max"} {
			want := roiAlignRef(xd, xs, rd, bis, mode, oh, ow, ratio, scale, half)
			attrs := roiAttrs(mode, int64(oh), int64(ow), int64(ratio), graph.AttrFloatOf("spatial_scale", scale),
				graph.AttrStringOf("coordinate_transformation_mode", ctm))
			k, err := newRoiAlign(&NodeInfo{Node: &graph.Node{OpType: "RoiAlign", Attrs: attrs}, Opset: 16})
			if err != nil {
				t.Fatal(err)
			}
			var first []float32
			for _, threads := range []int{1, 2} {
				parallel.ForceSplit(threads)
				out, err := k.Run(&Context{Threads: threads}, []*graph.Tensor{graph.Float32Tensor(xs, xd), graph.Float32Tensor([]int{nr, 4}, rd), graph.Int64Tensor([]int{nr}, bi)})
				if err != nil {
					t.Fatal(err)
				}
				got := out[0].Float32s()
				name := fmt.Sprintf("case %d %s: x %v rois %v ratio %d out %dx%d scale %g %s, %d threads", i, mode, xs, rd, ratio, oh, ow, scale, ctm, threads)
				if first == nil {
					first = got
				} else {
					sameFloats(t, name+" vs 1 thread", got, first)
				}
				if mode == "max" {
					sameFloats(t, name, got, want)
					continue
				}
				for j := range want {
					g, wv := float64(got[j]), float64(want[j])
					if math.IsNaN(wv) || math.IsInf(wv, 0) || g == 0 || wv == 0 {
						sameFloats(t, fmt.Sprintf("%s element %d", name, j), got[j:j+1], want[j:j+1])
						continue
					}
					if math.Abs(g-wv) > math.Abs(wv)*0x1p-23 {
						t.Fatalf("%s: element %d = %g, want %g", name, j, g, wv)
					}
				}
			}
		}
	}
}
