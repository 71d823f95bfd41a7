package testmodels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Samples returns n seeded inputs for the named catalog model m, one map per
// sample keyed by input name. The zoo's image inputs (rank 4) are image-like:
// per channel a smooth random field (a 6x6 grid of N(0,1) shared in part across
// channels, bilinearly upsampled), white noise, and a per-image channel offset,
// like normalized photographs, so that globally pooled features differ from
// image to image. The zoo's sequence inputs and every other model's inputs are
// i.i.d. N(0,1) (the other models keep the samples mkmodel always wrote).
func Samples(name string, m *graph.Model, n int, seed uint64) ([]map[string]*graph.Tensor, error) {
	type spec struct {
		name  string
		shape []int
	}
	var ins []spec
	for _, in := range m.Graph.Inputs {
		if in.Const != nil {
			continue
		}
		shape, ok := in.StaticShape()
		if !ok {
			return nil, fmt.Errorf("testmodels: input %q of %s has no static shape", in.Name, name)
		}
		if dt := in.ElemType(); dt != graph.Float {
			return nil, fmt.Errorf("testmodels: input %q of %s is %v, only float inputs get samples", in.Name, name, dt)
		}
		ins = append(ins, spec{in.Name, shape})
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("testmodels: %s has no inputs", name)
	}
	zoo := slices.Contains(Zoo(), name)
	// Weights made trained-like by the probe pass expect images: on noise
	// YOLOv8's activations grew past float16's range (29407 by its 13th
	// convolution).
	images := zoo || slices.Contains(trainedFamilies, name)
	r := rand.New(rand.NewPCG(seed, 42))
	out := make([]map[string]*graph.Tensor, n)
	for i := range out {
		out[i] = map[string]*graph.Tensor{}
		for j, in := range ins {
			if !zoo && j > 0 {
				break // mkmodel has always written the first input only
			}
			x := graph.NewTensor(graph.Float, in.shape)
			if images && len(in.shape) == 4 {
				imageLike(r, x)
			} else {
				for k, d := 0, x.Float32s(); k < len(d); k++ {
					d[k] = float32(r.NormFloat64())
				}
			}
			out[i][in.name] = x
		}
	}
	return out, nil
}

// imageLike fills an NCHW tensor with smooth fields, noise and channel offsets.
func imageLike(r *rand.Rand, x *graph.Tensor) {
	imageLikeData(r, x.Float32s(), x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3])
}

func imageLikeData(r *rand.Rand, d []float32, n, c, h, w int) {
	const grid = 6
	shared := make([]float64, grid*grid)
	own := make([]float64, grid*grid)
	for b := 0; b < n; b++ {
		for i := range shared {
			shared[i] = r.NormFloat64()
		}
		for ch := 0; ch < c; ch++ {
			for i := range own {
				own[i] = (shared[i] + r.NormFloat64()) / math.Sqrt2
			}
			offset := 0.4 * r.NormFloat64()
			plane := d[(b*c+ch)*h*w : (b*c+ch+1)*h*w]
			for y := 0; y < h; y++ {
				gy := float64(y) * (grid - 1) / float64(max(h-1, 1))
				y0 := min(int(gy), grid-2)
				fy := gy - float64(y0)
				for xx := 0; xx < w; xx++ {
					gx := float64(xx) * (grid - 1) / float64(max(w-1, 1))
					x0 := min(int(gx), grid-2)
					fx := gx - float64(x0)
					s := (1-fy)*((1-fx)*own[y0*grid+x0]+fx*own[y0*grid+x0+1]) +
						fy*((1-fx)*own[(y0+1)*grid+x0]+fx*own[(y0+1)*grid+x0+1])
					plane[y*w+xx] = float32(0.8*s + 0.5*r.NormFloat64() + offset)
				}
			}
		}
	}
}
