package report

import (
	"encoding/csv"
	"io"
	"math"
	"strconv"
)

// The CSV writers print floats in the shortest form that parses back to
// the same value ("+Inf" and "NaN" included) and a header line first.

// WriteLayersCSV writes one row per tensor metric (layers or outputs).
func WriteLayersCSV(w io.Writer, ms []Metric) error {
	rows := [][]string{{"index", "name", "op_type", "node", "cosine", "sqnr_db", "channel_sqnr_db", "mse", "max_abs", "top1", "quantized", "note"}}
	opt := func(v *float64) string { // empty where not measured
		if v == nil {
			return ""
		}
		return f64(*v)
	}
	for _, m := range ms {
		rows = append(rows, []string{strconv.Itoa(m.Index), m.Name, m.OpType, m.Node,
			f64(m.Cosine), f64(m.SQNR), opt(m.ChannelSQNR), f64(m.MSE), f64(m.MaxAbs), opt(m.Top1),
			strconv.FormatBool(m.Quantized), m.Note})
	}
	return writeCSV(w, rows)
}

// TensorColumns are the columns of WriteTensorsCSV: MindSpore's debug set
// for the float and the dequantized values side by side, then the encoding.
var TensorColumns = []string{"name", "kind",
	"float_min", "float_q1", "float_median", "float_q3", "float_max", "float_mean", "float_variance", "float_zero_share",
	"dequant_min", "dequant_q1", "dequant_median", "dequant_q3", "dequant_max", "dequant_mean", "dequant_variance", "dequant_zero_share",
	"clip_rate", "cosine", "quant_lo", "quant_hi", "scale", "zero_point", "bits", "dtype", "observer"}

// WriteTensorsCSV writes one row per tensor statistics entry.
func WriteTensorsCSV(w io.Writer, ts []TensorStats) error {
	rows := [][]string{TensorColumns}
	for _, t := range ts {
		r := []string{t.Name, t.Kind}
		for _, s := range []Summary{t.Float, t.Dequant} {
			r = append(r, f64(s.Min), f64(s.Q1), f64(s.Median), f64(s.Q3), f64(s.Max), f64(s.Mean), f64(s.Variance), f64(s.ZeroShare))
		}
		r = append(r, f64(t.ClipRate), f64(t.Cosine), f64(t.QuantLo), f64(t.QuantHi), f64(t.Scale),
			strconv.FormatInt(t.ZeroPoint, 10), strconv.Itoa(t.Bits), t.DType, t.Observer)
		rows = append(rows, r)
	}
	return writeCSV(w, rows)
}

// WriteSensitivityCSV writes the ranking, by rank.
func WriteSensitivityCSV(w io.Writer, rs []SensitivityRow) error {
	rows := [][]string{{"rank", "node", "op_type", "mode", "cosine", "sqnr_db", "weight_cosine", "weight_sqnr_db", "act_cosine", "act_sqnr_db"}}
	for _, r := range sortedSensitivity(rs) {
		rows = append(rows, []string{strconv.Itoa(r.Rank), r.Node, r.OpType, r.Mode,
			f64(r.Cosine), f64(r.SQNR), f64(r.WeightCosine), f64(r.WeightSQNR), f64(r.ActCosine), f64(r.ActSQNR)})
	}
	return writeCSV(w, rows)
}

// WriteTuneCSV writes the models tune tried; the raised nodes are joined
// with ";" (the JSON report keeps them as a list).
func WriteTuneCSV(w io.Writer, ps []TunePoint) error {
	rows := [][]string{{"phase", "raised", "metric_name", "metric", "met", "chosen", "size_bytes", "int8_mac_share", "nodes"}}
	for _, p := range ps {
		nodes := ""
		for i, n := range p.Nodes {
			if i > 0 {
				nodes += ";"
			}
			nodes += n
		}
		rows = append(rows, []string{p.Phase, strconv.Itoa(p.Raised), p.MetricName, f64(p.Metric),
			strconv.FormatBool(p.Met), strconv.FormatBool(p.Chosen), strconv.FormatInt(p.SizeBytes, 10), f64(p.Int8MACShare), nodes})
	}
	return writeCSV(w, rows)
}

func writeCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func f64(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
