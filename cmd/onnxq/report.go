package main

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/report"
	"github.com/onnxq/onnxq/tune"
)

// reportData is what the HTML report and the plots render.
type reportData = report.Data

func toMetric(t *diagnose.TensorResult) report.Metric {
	return report.Metric{Index: t.Index, Name: t.Name, OpType: t.OpType, Node: t.Node,
		Cosine: t.Cosine, SQNR: t.SQNR, MSE: t.MSE, MaxAbs: t.MaxAbs, Top1: t.Top1,
		ChannelSQNR: t.ChannelSQNR, Quantized: t.Quant != nil, Note: t.Note}
}

func compareReport(res *diagnose.Result, ref, test string) *reportData {
	d := &report.Data{
		Title:      fmt.Sprintf("onnxq compare: %s vs %s", filepath.Base(ref), filepath.Base(test)),
		FloatModel: ref, QuantModel: test, Samples: res.Samples,
		Thresholds:       report.Thresholds{Cos: res.Thresholds.Cos, SQNR: res.Thresholds.SQNR},
		FirstBad:         res.FirstBad,
		WorstContributor: res.WorstContributor,
		Notes:            []string{fmt.Sprintf("compared in %.2f s", res.Seconds)},
	}
	for i := range res.Outputs {
		o := &res.Outputs[i]
		d.Outputs = append(d.Outputs, toMetric(o))
		if o.Bad(res.Thresholds.Cos, res.Thresholds.SQNR) {
			d.Warnings = append(d.Warnings, fmt.Sprintf("output %s: cosine %.4f, SQNR %.2f dB under the thresholds", o.Name, o.Cosine, o.EffectiveSQNR()))
		}
	}
	for i := range res.Layers {
		d.Layers = append(d.Layers, toMetric(&res.Layers[i]))
	}
	for _, t := range append(slices.Clone(res.Layers), res.Outputs...) {
		if t.Stats == nil {
			continue
		}
		ts := report.TensorStats{Name: t.Name, Kind: "activation", Float: report.Summary(t.Stats.Float),
			Dequant: report.Summary(t.Stats.Dequant), Cosine: t.Cosine, ClipRate: t.Stats.ClipRate,
			Hist: (*report.Hist)(t.Stats.Hist), DType: "float"}
		if q := t.Quant; q != nil {
			ts.Scale, ts.ZeroPoint, ts.Bits, ts.DType = q.Scale, q.ZeroPoint, q.Bits(), q.DType.Short()
			if !q.PerChannel { // a per-channel range has no single clipping range to draw
				ts.QuantLo, ts.QuantHi = q.Lo, q.Hi
			}
		}
		d.Tensors = append(d.Tensors, ts)
	}
	return d
}

func effectOr(e *diagnose.Effect) (cos, sqnr float64) {
	if e == nil {
		return math.NaN(), math.NaN() // not measured
	}
	return e.Cosine, e.SQNR
}

func sensitivityRows(res *diagnose.SensitivityResult) []report.SensitivityRow {
	var rows []report.SensitivityRow
	for _, r := range res.Rows {
		wc, ws := effectOr(r.Weight)
		ac, as := effectOr(r.Activation)
		rows = append(rows, report.SensitivityRow{Rank: r.Rank, Node: r.Node, OpType: r.OpType, Mode: res.Mode,
			Cosine: r.Cosine, SQNR: r.SQNR, WeightCosine: wc, WeightSQNR: ws, ActCosine: ac, ActSQNR: as})
	}
	return rows
}

func sensitivityReport(res *diagnose.SensitivityResult, model string) *reportData {
	return &report.Data{Title: "onnxq sensitivity: " + filepath.Base(model), FloatModel: model, Samples: res.Samples,
		Sensitivity: sensitivityRows(res),
		Notes: []string{fmt.Sprintf("mode %s, %.2f s, %d base runs per sample, variants ran %.0f%% of the nodes",
			res.Mode, res.Seconds, res.BaseRuns, 100*res.SuffixShare)}}
}

func tuneReport(res *tune.Result, model string) *reportData {
	d := &report.Data{Title: "onnxq tune: " + filepath.Base(model), FloatModel: model, TuneTarget: res.Target}
	if res.Ranking != nil {
		d.Samples = res.Ranking.Samples
		d.Sensitivity = sensitivityRows(res.Ranking)
	}
	chosen := false
	for _, s := range res.Steps {
		p := report.TunePoint{Raised: s.Raised, Metric: s.Metric, MetricName: res.Metric, SizeBytes: s.SizeBytes,
			Int8MACShare: s.Int8MACShare, Nodes: s.Nodes, Met: s.Met, Phase: s.Phase}
		if !chosen && s.Raised == res.Best.Raised && slices.Equal(s.Nodes, res.Best.Nodes) {
			p.Chosen, chosen = true, true
		}
		d.Tune = append(d.Tune, p)
	}
	verdict := "meets"
	if !res.Met {
		verdict = "does not meet"
		d.Warnings = append(d.Warnings, fmt.Sprintf("the target %s %g was not met; the best reached %g", res.Metric, res.Target, res.Best.Metric))
	}
	d.Notes = append(d.Notes, fmt.Sprintf("%d of %d nodes raised to %s: %s %.6g %s the target %g (%.1f s)",
		res.Best.Raised, res.Units, res.Prefer, res.Metric, res.Best.Metric, verdict, res.Target, res.Seconds))
	return d
}

func writeHTMLReport(path string, d *reportData) error { return report.WriteHTML(path, d) }

func writePlots(dir string, d *reportData) error { return report.WritePlots(dir, d) }
