package kernels

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// The scalar float64 RNN, GRU and LSTM that rnn.go replaced, kept as the
// reference the fast kernels are checked against: one matrix-vector product
// per gate row per step, written straight from the ONNX formulas. One fix over
// the old kernel: GRU without linear_before_reset multiplies R_h by r⊙h (the
// reset gate of each input unit), where the old code scaled row k of R_h·h by
// unit k's gate; the backend tests' uniform weights could not tell them apart.

// refActivation returns an activation function by ONNX name.
func refActivation(name string, alpha, beta float64) (func(float64) float64, error) {
	switch strings.ToLower(name) {
	case "sigmoid":
		return func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, nil
	case "tanh":
		return math.Tanh, nil
	case "relu":
		return func(x float64) float64 { return math.Max(0, x) }, nil
	case "leakyrelu":
		return func(x float64) float64 {
			if x < 0 {
				return alpha * x
			}
			return x
		}, nil
	case "thresholdedrelu":
		return func(x float64) float64 {
			if x > alpha {
				return x
			}
			return 0
		}, nil
	case "scaledtanh":
		return func(x float64) float64 { return alpha * math.Tanh(beta*x) }, nil
	case "hardsigmoid":
		return func(x float64) float64 { return math.Max(0, math.Min(1, alpha*x+beta)) }, nil
	case "elu":
		return func(x float64) float64 {
			if x < 0 {
				return alpha * (math.Exp(x) - 1)
			}
			return x
		}, nil
	case "softsign":
		return func(x float64) float64 { return x / (1 + math.Abs(x)) }, nil
	case "softplus":
		return func(x float64) float64 { return math.Log1p(math.Exp(x)) }, nil
	}
	return nil, fmt.Errorf("activation %q is not supported", name)
}

func refRecurrent(kind rnnKind) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		hidden := int(a.Int("hidden_size", 0))
		direction := a.String("direction", "forward")
		clip := float64(a.Float("clip", 0))
		layout := a.Int("layout", 0)
		linearBeforeReset := a.Int("linear_before_reset", 0) != 0
		inputForget := a.Int("input_forget", 0) != 0
		names, _ := ni.Node.AttrStrings("activations", nil)
		alphas := a.Floats("activation_alpha", nil)
		betas := a.Floats("activation_beta", nil)
		if a.err != nil {
			return nil, a.err
		}
		dirs := 1
		switch direction {
		case "forward", "reverse":
		case "bidirectional":
			dirs = 2
		default:
			return nil, fmt.Errorf("unknown direction %q", direction)
		}
		per := [...]int{1, 2, 3}[kind] // activations per direction
		if names == nil {
			def := [...][]string{{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}}[kind]
			for d := 0; d < dirs; d++ {
				names = append(names, def...)
			}
		}
		if len(names) != per*dirs {
			return nil, fmt.Errorf("%d activations given, need %d", len(names), per*dirs)
		}
		acts := make([]func(float64) float64, len(names))
		ai := 0
		for i, n := range names {
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
			f, err := refActivation(n, alpha, beta)
			if err != nil {
				return nil, err
			}
			acts[i] = f
		}
		return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
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
			if x.Rank() != 3 {
				return nil, fmt.Errorf("X must be 3-D, got %v", x.Shape)
			}
			seq, batch, isz := x.Shape[0], x.Shape[1], x.Shape[2]
			if layout == 1 {
				seq, batch = x.Shape[1], x.Shape[0]
			}
			g := kind.gates()
			hs := hidden
			if hs == 0 {
				hs = r.Shape[len(r.Shape)-1]
			}
			if w.Len() != dirs*g*hs*isz || r.Len() != dirs*g*hs*hs {
				return nil, fmt.Errorf("W %v / R %v do not fit %d directions, hidden %d, input %d", w.Shape, r.Shape, dirs, hs, isz)
			}
			xv, _ := asFloat64s(x)
			wv, _ := asFloat64s(w)
			rv, _ := asFloat64s(r)
			var bv, h0, c0, pv []float64
			if t := opt(3); t != nil {
				bv, _ = asFloat64s(t)
			}
			var lens []int
			if t := opt(4); t != nil {
				var err error
				if lens, err = ints(t); err != nil {
					return nil, err
				}
			}
			if t := opt(5); t != nil {
				h0, _ = asFloat64s(t)
			}
			if kind == kindLSTM {
				if t := opt(6); t != nil {
					c0, _ = asFloat64s(t)
				}
				if t := opt(7); t != nil {
					pv, _ = asFloat64s(t)
				}
			}
			xAt := func(t, b, i int) float64 {
				if layout == 1 {
					return xv[(b*seq+t)*isz+i]
				}
				return xv[(t*batch+b)*isz+i]
			}
			// Y [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden].
			y := make([]float64, seq*dirs*batch*hs)
			yh := make([]float64, dirs*batch*hs)
			yc := make([]float64, dirs*batch*hs)
			yAt := func(t, d, b int) int {
				if layout == 1 {
					return ((b*seq+t)*dirs + d) * hs
				}
				return ((t*dirs+d)*batch + b) * hs
			}
			stAt := func(d, b int) int {
				if layout == 1 {
					return (b*dirs + d) * hs
				}
				return (d*batch + b) * hs
			}
			clipf := func(v float64) float64 {
				if clip > 0 {
					return math.Max(-clip, math.Min(clip, v))
				}
				return v
			}
			for d := 0; d < dirs; d++ {
				reverse := direction == "reverse" || d == 1
				W := wv[d*g*hs*isz:]
				R := rv[d*g*hs*hs:]
				var Wb, Rb []float64
				if bv != nil {
					Wb, Rb = bv[d*2*g*hs:], bv[d*2*g*hs+g*hs:]
				}
				f := acts[d*per:]
				for b := 0; b < batch; b++ {
					h := make([]float64, hs)
					c := make([]float64, hs)
					if h0 != nil {
						copy(h, h0[stAt(d, b):stAt(d, b)+hs])
					}
					if c0 != nil {
						copy(c, c0[stAt(d, b):stAt(d, b)+hs])
					}
					steps := seq
					if lens != nil {
						steps = lens[b]
					}
					gx := make([]float64, g*hs) // W x + Wb
					gh := make([]float64, g*hs) // R h + Rb
					for s := 0; s < steps; s++ {
						t := s
						if reverse {
							t = steps - 1 - s
						}
						for j := 0; j < g*hs; j++ {
							var sx, sh float64
							for i := 0; i < isz; i++ {
								sx += W[j*isz+i] * xAt(t, b, i)
							}
							for i := 0; i < hs; i++ {
								sh += R[j*hs+i] * h[i]
							}
							if Wb != nil {
								sx += Wb[j]
								sh += Rb[j]
							}
							gx[j], gh[j] = sx, sh
						}
						nh := make([]float64, hs)
						switch kind {
						case kindRNN:
							for k := 0; k < hs; k++ {
								nh[k] = f[0](clipf(gx[k] + gh[k]))
							}
						case kindGRU: // gates z, r, h
							// The reset gate of every unit first: without
							// linear_before_reset, R_h multiplies r⊙h.
							rg := make([]float64, hs)
							for k := range rg {
								rg[k] = f[0](clipf(gx[hs+k] + gh[hs+k]))
							}
							for k := 0; k < hs; k++ {
								z := f[0](clipf(gx[k] + gh[k]))
								rr := f[0](clipf(gx[hs+k] + gh[hs+k]))
								var hh float64
								if linearBeforeReset {
									hh = f[1](clipf(gx[2*hs+k] + rr*gh[2*hs+k]))
								} else {
									// R_h (r * h) + Rb_h
									var s2 float64
									for i := 0; i < hs; i++ {
										s2 += R[(2*hs+k)*hs+i] * rg[i] * h[i]
									}
									if Rb != nil {
										s2 += Rb[2*hs+k]
									}
									hh = f[1](clipf(gx[2*hs+k] + s2))
								}
								nh[k] = (1-z)*hh + z*h[k]
							}
						case kindLSTM: // gates i, o, f, c
							for k := 0; k < hs; k++ {
								gi, go_, gf, gc := gx[k]+gh[k], gx[hs+k]+gh[hs+k], gx[2*hs+k]+gh[2*hs+k], gx[3*hs+k]+gh[3*hs+k]
								if pv != nil {
									P := pv[d*3*hs:]
									gi += P[k] * c[k]
									gf += P[2*hs+k] * c[k]
								}
								it := f[0](clipf(gi))
								ft := f[0](clipf(gf))
								if inputForget {
									ft = 1 - it
								}
								ct := ft*c[k] + it*f[1](clipf(gc))
								if pv != nil {
									go_ += pv[d*3*hs+hs+k] * ct
								}
								ot := f[0](clipf(go_))
								c[k] = ct
								nh[k] = ot * f[2](ct)
							}
						}
						h = nh
						copy(y[yAt(t, d, b):yAt(t, d, b)+hs], h)
					}
					copy(yh[stAt(d, b):stAt(d, b)+hs], h)
					copy(yc[stAt(d, b):stAt(d, b)+hs], c)
				}
			}
			yShape := []int{seq, dirs, batch, hs}
			stShape := []int{dirs, batch, hs}
			if layout == 1 {
				yShape, stShape = []int{batch, seq, dirs, hs}, []int{batch, dirs, hs}
			}
			outs := []*graph.Tensor{graph.NewTensor(x.DType, yShape), graph.NewTensor(x.DType, stShape), graph.NewTensor(x.DType, stShape)}
			for i, v := range [][]float64{y, yh, yc} {
				if err := storeFloat64s(outs[i], v); err != nil {
					return nil, err
				}
			}
			if kind != kindLSTM {
				outs = outs[:2]
			}
			return outs, nil
		}), nil
	}
}
