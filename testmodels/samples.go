package testmodels

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
)

// Samples returns n seeded inputs for the named catalog model m, one map per
// sample keyed by input name. The zoo's image inputs (rank 4) are image-like:
// per channel a smooth random field (a 6x6 grid of N(0,1) shared in part across
// channels, bilinearly upsampled), white noise, and a per-image channel offset,
// like normalized photographs, so that globally pooled features differ from
// image to image. The zoo's sequence inputs and every other model's inputs are
// i.i.d. N(0,1) (the other models keep the samples mkmodel always wrote).
// An int64 input is token ids where a Gather reads it as indices (uniform
// over the rows of the Gather's constant table), else an attention mask:
// 1 for the tokens, then a padding tail of 0 of random length up to half.
func Samples(name string, m *graph.Model, n int, seed uint64) ([]map[string]*graph.Tensor, error) {
	type spec struct {
		name  string
		shape []int
		int64 bool
		vocab int // rows of the table a Gather reads with the input; 0: a mask
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
		sp := spec{name: in.Name, shape: shape}
		switch dt := in.ElemType(); dt {
		case graph.Float:
		case graph.Int64:
			sp.int64, sp.vocab = true, gatherRows(in)
		default:
			return nil, fmt.Errorf("testmodels: input %q of %s is %v, only float and int64 inputs get samples", in.Name, name, dt)
		}
		ins = append(ins, sp)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("testmodels: %s has no inputs", name)
	}
	zoo := slices.Contains(Zoo(), name)
	every := zoo || slices.Contains(Families(), name)
	// Weights made trained-like by the probe pass expect images: on noise
	// YOLOv8's activations grew past float16's range (29407 by its 13th
	// convolution).
	images := zoo || slices.Contains(trainedFamilies, name)
	r := rand.New(rand.NewPCG(seed, 42))
	out := make([]map[string]*graph.Tensor, n)
	for i := range out {
		out[i] = map[string]*graph.Tensor{}
		for j, in := range ins {
			if !every && j > 0 {
				break // mkmodel has always written the first input only
			}
			if in.int64 {
				out[i][in.name] = intSample(r, in.shape, in.vocab)
				continue
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

// WriteSamples writes samples as a calibration folder onnxq reads:
// sampleNNN.npy for a one-input model, sampleNNN/<input>.npy for several.
func WriteSamples(dir string, samples []map[string]*graph.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, set := range samples {
		if len(set) == 1 {
			for _, x := range set {
				if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("sample%03d.npy", i)), x); err != nil {
					return err
				}
			}
			continue
		}
		sub := filepath.Join(dir, fmt.Sprintf("sample%03d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(set)) {
			if err := npy.WriteFile(filepath.Join(sub, k+".npy"), set[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// gatherRows is the number of rows of the constant table a Gather reads
// with v as its indices, 0 when none does.
func gatherRows(v *graph.Value) int {
	for _, n := range v.Consumers {
		if n.OpType == "Gather" && len(n.Inputs) == 2 && n.Inputs[1] == v && n.Inputs[0].Const != nil && n.Inputs[0].Const.Rank() > 0 {
			return n.Inputs[0].Const.Shape[0]
		}
	}
	return 0
}

// intSample draws token ids uniform in [0, vocab) or, with vocab 0, a
// mask per row: 1s, then a tail of 0s up to half the row long.
func intSample(r *rand.Rand, shape []int, vocab int) *graph.Tensor {
	t := graph.NewTensor(graph.Int64, shape)
	d := t.Int64s()
	if vocab > 0 {
		for k := range d {
			d[k] = int64(r.IntN(vocab))
		}
		return t
	}
	row := shape[len(shape)-1]
	for o := 0; o < len(d); o += row {
		pad := r.IntN(row/2 + 1)
		for k := 0; k < row; k++ {
			if k < row-pad {
				d[o+k] = 1
			}
		}
	}
	return t
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
