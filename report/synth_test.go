package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// synthData builds a report of a detector-like model with n tensors: SQNR
// falling with depth, one planted bad layer, activation and weight
// histograms as calibration would see them, a sensitivity ranking and a
// tune curve. Seeded: the same n gives the same Data.
func synthData(n int) *Data {
	rng := rand.New(rand.NewPCG(13, uint64(n)))
	d := &Data{
		Title:      "onnxq compare: det.onnx vs det.qdq.onnx",
		FloatModel: "det.onnx",
		QuantModel: "det.qdq.onnx",
		Samples:    32,
		Thresholds: Thresholds{Cos: 0.99, SQNR: 20},
		Notes:      []string{"float 1.84 s, quantized 2.10 s, compare 0.31 s", "verdict: 1 output under the thresholds"},
		Warnings:   []string{"output sigmoid_0.tmp_0: cosine 0.9871 under 0.99: run `onnxq compare --layerwise` to find the cause"},
		TuneTarget: 0.99,
	}
	ops := []string{"Conv", "Relu", "Conv", "HardSwish", "Add", "Resize", "Concat", "Sigmoid"}
	bad := n * 2 / 7 / len(ops) * len(ops) // a Conv
	for i := range n {
		op := ops[i%len(ops)]
		sq := 42 - 20*float64(i)/float64(n) + rng.NormFloat64()*1.5
		if i == bad {
			sq = 11.5
		} else if i > bad {
			sq -= 3
		}
		m := Metric{Index: i, Name: fmt.Sprintf("/backbone/stage%d/%s_%d_output_0", i/40, op, i), OpType: op,
			Node: fmt.Sprintf("/backbone/stage%d/%s_%d", i/40, op, i), Quantized: op != "Resize" && op != "Concat"}
		m.SQNR = sq
		if op == "Conv" { // per-channel weights: the channel median too
			ch := sq - 2 + rng.NormFloat64()
			if i == bad {
				ch = 6.25
			}
			m.ChannelSQNR = &ch
		}
		m.Cosine = 1 / math.Sqrt(1+math.Pow(10, -sq/10))
		m.MSE = math.Pow(10, -sq/10) * 0.8
		m.MaxAbs = math.Sqrt(m.MSE) * 9
		d.Layers = append(d.Layers, m)
		if i == bad {
			d.FirstBad = m.Name
			d.WorstContributor = m.Name
		}
	}
	// An unquantized tensor that passes through unchanged: infinite SQNR.
	if n > 5 {
		d.Layers[5].SQNR, d.Layers[5].Cosine, d.Layers[5].MSE, d.Layers[5].MaxAbs = math.Inf(1), 1, 0, 0
	}
	top1 := 0.96875
	d.Outputs = []Metric{
		{Index: 0, Name: "sigmoid_0.tmp_0", OpType: "Sigmoid", Cosine: 0.98712, SQNR: 16.94, MSE: 2.1e-3, MaxAbs: 0.41, Quantized: true},
		{Index: 1, Name: "cls_scores", OpType: "Softmax", Cosine: 0.99951, SQNR: 30.1, MSE: 4.2e-6, MaxAbs: 0.012, Top1: &top1, Quantized: true},
	}
	for i := range n {
		d.Tensors = append(d.Tensors, synthTensor(rng, d.Layers[i].Name, i%3 == 2, i == bad))
	}
	for r := range 40 {
		i := (bad + 37*r) % n
		if r == 0 {
			i = bad
		}
		sq := 14 + 1.2*float64(r) + rng.Float64()
		row := SensitivityRow{Rank: r + 1, Node: d.Layers[i].Node, OpType: d.Layers[i].OpType, Mode: "quant-one",
			SQNR: sq, Cosine: 1 / math.Sqrt(1+math.Pow(10, -sq/10)),
			WeightSQNR: sq + 9 + rng.Float64()*4, ActSQNR: sq + 0.5 + rng.Float64()}
		row.WeightCosine = 1 / math.Sqrt(1+math.Pow(10, -row.WeightSQNR/10))
		row.ActCosine = 1 / math.Sqrt(1+math.Pow(10, -row.ActSQNR/10))
		d.Sensitivity = append(d.Sensitivity, row)
	}
	size := int64(3_400_000)
	cos := 0.9871
	var raised []string
	for k := range 8 {
		if k > 0 {
			raised = append(raised, d.Sensitivity[k-1].Node)
			cos += (0.9995 - cos) * 0.45
			size += 95_000
		}
		phase := "grow"
		if k == 0 {
			phase = "base"
		}
		d.Tune = append(d.Tune, TunePoint{Raised: k, Metric: cos, MetricName: "cosine", SizeBytes: size,
			Int8MACShare: 1 - 0.021*float64(k), Nodes: append([]string(nil), raised...), Phase: phase, Met: cos >= d.TuneTarget})
	}
	// Pruning tries the second node alone; the first alone is the result.
	d.Tune = append(d.Tune, TunePoint{Raised: 1, Metric: 0.9893, MetricName: "cosine", SizeBytes: 3_495_000,
		Int8MACShare: 0.979, Nodes: []string{d.Sensitivity[1].Node}, Phase: "prune"})
	d.Tune[1].Chosen = true
	return d
}

// synthTensor draws values as a calibration run would see them (weights:
// normal; activations: a spike at zero and an exponential tail, one planted
// channel 1000x wider when planted) and summarises them in a 2048-bin
// histogram with a min/max or percentile range.
func synthTensor(rng *rand.Rand, name string, weight, planted bool) TensorStats {
	const nv = 4000
	vs := make([]float64, nv)
	for i := range vs {
		switch {
		case weight:
			vs[i] = rng.NormFloat64() * 0.05
		case rng.Float64() < 0.4:
			vs[i] = 0
		default:
			vs[i] = rng.ExpFloat64() * 0.7
		}
		if planted && i%64 == 0 {
			vs[i] *= 1000
		}
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	h := &Hist{Lo: lo, Hi: hi, Counts: make([]float64, 2048)}
	for _, v := range vs {
		b := int((v - lo) / (hi - lo) * 2048)
		h.Counts[min(b, 2047)]++
	}
	t := TensorStats{Name: name, Kind: "activation", Bits: 8, DType: "uint8", Observer: "percentile", Hist: h}
	qlo, qhi := min(lo, 0), hi*0.55
	if weight {
		t.Kind, t.DType, t.Observer = "weight", "int8", "minmax"
		a := max(-lo, hi)
		qlo, qhi = -a, a
	}
	t.QuantLo, t.QuantHi = qlo, qhi
	t.Scale = (qhi - qlo) / 255
	if !weight {
		t.ZeroPoint = int64(math.Round(-qlo / t.Scale))
	}
	var clipped, zeros, dzeros int
	var dot, nf, nd, sum, dsum float64
	deq := make([]float64, nv)
	for i, v := range vs {
		if v < qlo || v > qhi {
			clipped++
		}
		q := math.Round(math.Max(qlo, math.Min(qhi, v))/t.Scale) * t.Scale
		deq[i] = q
		dot, nf, nd = dot+v*q, nf+v*v, nd+q*q
		sum, dsum = sum+v, dsum+q
		if v == 0 {
			zeros++
		}
		if q == 0 {
			dzeros++
		}
	}
	t.ClipRate = float64(clipped) / nv
	t.Cosine = dot / math.Sqrt(nf*nd)
	t.Float = summarize(vs, float64(zeros)/nv)
	t.Dequant = summarize(deq, float64(dzeros)/nv)
	return t
}

func summarize(vs []float64, zeroShare float64) Summary {
	s := append([]float64(nil), vs...)
	slices.Sort(s)
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1))] }
	var mean, v2 float64
	for _, v := range s {
		mean += v
	}
	mean /= float64(len(s))
	for _, v := range s {
		v2 += (v - mean) * (v - mean)
	}
	return Summary{Min: s[0], Q1: q(0.25), Median: q(0.5), Q3: q(0.75), Max: s[len(s)-1], Mean: mean,
		Variance: v2 / float64(len(s)), ZeroShare: zeroShare}
}
