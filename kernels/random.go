package kernels

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/onnxq/onnxq/graph"
)

// Random generators: RandomNormal, RandomUniform, their Like forms and
// Bernoulli, which generative models put in their graphs (a VAE's sampled
// latent, diffusion noise). onnxq is a build step that must be
// deterministic, so every run of a node draws the same values: a PCG
// stream seeded by the node's seed attribute, or by its name when it has
// none, restarted each run. The values are not numpy's (or ONNX Runtime's)
// draws; only their distribution is the spec's.

func init() {
	Register("", "RandomNormal", 1, newRandom(false, false))
	Register("", "RandomUniform", 1, newRandom(true, false))
	Register("", "RandomNormalLike", 1, newRandom(false, true))
	Register("", "RandomUniformLike", 1, newRandom(true, true))
	Register("", "Bernoulli", 15, newBernoulli)
}

// rngFor is the node's generator, restarted for each run.
func rngFor(ni *NodeInfo) func() *rand.Rand {
	a := attrsOf(ni.Node)
	var seed uint64
	if ni.Node.HasAttr("seed") {
		seed = uint64(math.Float32bits(a.Float("seed", 0)))
	} else {
		h := fnv.New64a()
		h.Write([]byte(ni.Node.Name + "/" + ni.Node.OpType))
		seed = h.Sum64()
	}
	return func() *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
}

// newRandom draws normal (mean, scale) or uniform [low, high) values of the
// shape attribute, or of the input's shape for the Like forms, in dtype
// (default float32; the Like forms default to the input's type).
func newRandom(uniform, like bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		p, q := a.Float("mean", 0), a.Float("scale", 1)
		if uniform {
			p, q = a.Float("low", 0), a.Float("high", 1)
		}
		dt := graph.DataType(a.Int("dtype", 0))
		shape := toInts(a.Ints("shape", nil))
		if a.err != nil {
			return nil, a.err
		}
		if !like && !ni.Node.HasAttr("shape") {
			return nil, fmt.Errorf("%s needs its shape attribute", ni.Node.OpType)
		}
		for _, d := range shape {
			if d < 0 {
				return nil, fmt.Errorf("shape %v has a negative dimension", shape)
			}
		}
		if dt == graph.Undefined && !like {
			dt = graph.Float
		}
		rng := rngFor(ni)
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			sh, out := shape, dt
			if like {
				if err := need(in, 1); err != nil {
					return nil, err
				}
				sh = in[0].Shape
				if out == graph.Undefined {
					out = in[0].DType
				}
			}
			if isHalf(out) {
				out = graph.Float // the session computes half types in float32
			}
			if out != graph.Float && out != graph.Double {
				return nil, fmt.Errorf("%s makes float values, not %s", ni.Node.OpType, out.Short())
			}
			t := ctx.Empty(out, sh)
			r := rng()
			v := make([]float64, t.Len())
			for i := range v {
				if uniform {
					v[i] = float64(p) + float64(q-p)*r.Float64()
				} else {
					v[i] = float64(p) + float64(q)*r.NormFloat64()
				}
			}
			return one(t), storeFloat64s(t, v)
		}), nil
	}
}

// newBernoulli draws 1 with the input's probability, else 0, in dtype
// (default the input's type).
func newBernoulli(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	dt := graph.DataType(a.Int("dtype", 0))
	if a.err != nil {
		return nil, a.err
	}
	rng := rngFor(ni)
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		prob, err := in[0].AsFloat32()
		if err != nil {
			return nil, fmt.Errorf("Bernoulli's input: %v", err)
		}
		out := dt
		if out == graph.Undefined {
			out = in[0].DType
		}
		if isHalf(out) {
			out = graph.Float
		}
		r := rng()
		v := make([]float64, len(prob))
		for i, pr := range prob {
			if !(pr >= 0 && pr <= 1) {
				return nil, fmt.Errorf("Bernoulli probability %g is outside [0, 1]", pr)
			}
			if r.Float64() < float64(pr) {
				v[i] = 1
			}
		}
		t := ctx.Empty(out, in[0].Shape)
		if err := storeFloat64s(t, v); err != nil {
			return nil, fmt.Errorf("Bernoulli: %v", err)
		}
		return one(t), nil
	}), nil
}
