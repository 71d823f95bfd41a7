package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/report"
	"github.com/urfave/cli/v3"
)

// measureFlags are the [compare] settings shared by compare, convert and tune.
func measureFlags(withData bool) []convertFlag {
	d := overrides.DefaultConfig()
	out := []convertFlag{
		{&cli.FloatFlag{Name: "cos-threshold", Aliases: []string{"warn-cos"}, Value: d.Compare.CosThreshold, Usage: "a tensor or output under this cosine is bad"}, "compare.cos_threshold", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.CosThreshold = cmd.Float("cos-threshold")
			return nil
		}},
		{&cli.FloatFlag{Name: "sqnr-threshold", Aliases: []string{"warn-sqnr"}, Value: d.Compare.SQNRThreshold, Usage: "a tensor or output under this SQNR (dB) is bad"}, "compare.sqnr_threshold", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.SQNRThreshold = cmd.Float("sqnr-threshold")
			return nil
		}},
	}
	if withData {
		out = append(out, convertFlag{&cli.StringFlag{Name: "data", Usage: "samples to run both models on (same forms as --calib)"}, "compare.eval", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Eval = cmd.String("data")
			return nil
		}})
	}
	return out
}

// sampleFlags are convert's flags that say how to read samples.
func sampleFlags() []convertFlag {
	var out []convertFlag
	for _, f := range convertFlags() {
		if strings.HasPrefix(f.key, "calib.image.") || strings.HasPrefix(f.key, "calib.raw_") || f.key == "calib.size" || f.key == "threads" {
			out = append(out, f)
		}
	}
	return out
}

func compareFlagTable() []convertFlag {
	table := append(measureFlags(true), sampleFlags()...)
	return append(table,
		convertFlag{&cli.BoolFlag{Name: "layerwise", Usage: "compare every tensor the models share, not only the outputs"}, "compare.layerwise", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Layerwise = cmd.Bool("layerwise")
			return nil
		}},
		convertFlag{&cli.StringFlag{Name: "stats", Usage: "write per-tensor statistics (float and dequantized quartiles, clip rate, encodings) as CSV"}, "compare.stats", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Stats = cmd.String("stats")
			return nil
		}},
		convertFlag{&cli.StringFlag{Name: "report", Usage: "write the result: .json, .csv (one row per tensor) or .html"}, "compare.report", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Report = cmd.String("report")
			return nil
		}},
		plotsFlag(),
	)
}

// plotsFlag is --plots, shared by compare, sensitivity and tune: the
// report's figures as PNG files.
func plotsFlag() convertFlag {
	return convertFlag{&cli.StringFlag{Name: "plots", Usage: "write the report's figures as PNG files into this folder"}, "compare.plots", func(c *overrides.Config, cmd *cli.Command) error {
		c.Compare.Plots = cmd.String("plots")
		return nil
	}}
}

func compareCommand() *cli.Command {
	table := compareFlagTable()
	flags := []cli.Flag{&cli.StringFlag{Name: "config", Usage: "TOML run config; its [compare] and [calib] tables apply, flags override them"}}
	for _, f := range table {
		flags = append(flags, f.flag)
	}
	return &cli.Command{
		Name:      "compare",
		Usage:     "measure a model against a reference on samples: outputs, and with --layerwise every shared tensor",
		ArgsUsage: "FLOAT.onnx QUANT.onnx",
		Description: "Runs both models side by side on --data and reports per output cosine, SQNR, MSE, max abs error\n" +
			"(and top-1 agreement for class scores). --layerwise matches every tensor of the first model in the\n" +
			"second (by name, through Q/DQ pairs, through onnxq's pass renames) and names the first one under the\n" +
			"thresholds. Works on QDQ models of any tool.\n\n" +
			"   onnxq compare model.onnx model.qdq.onnx --data calib/ --layerwise\n" +
			"   onnxq compare model.onnx model.qdq.onnx --data eval/ --layerwise --stats stats.csv --report r.html",
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := runConfigArgs(cmd, table, false)
			if err != nil {
				return err
			}
			if cmd.Args().Len() != 2 {
				return usageError("compare: expected FLOAT.onnx and QUANT.onnx, got %d arguments", cmd.Args().Len())
			}
			if cfg.Compare.Eval == "" {
				return usageError("compare: --data is required (a folder of samples, as for --calib)")
			}
			if err := checkReportPath(cfg.Compare.Report); err != nil {
				return usageError("compare: --report: %v", err)
			}
			ref, err := graph.Load(cmd.Args().Get(0))
			if err != nil {
				return failed(err)
			}
			test, err := graph.Load(cmd.Args().Get(1))
			if err != nil {
				return failed(err)
			}
			src, err := dataset.Open(cfg.Compare.Eval, dataset.InputsOf(ref), datasetOptions(cfg))
			if err != nil {
				return failed(err)
			}
			res, err := diagnose.Compare(ctx, ref, test, src, diagnose.Options{
				Threads: cfg.Threads, Layerwise: cfg.Compare.Layerwise, Stats: cfg.Compare.Stats != "" || cfg.Compare.Report != "" || cfg.Compare.Plots != "",
				CosThreshold: cfg.Compare.CosThreshold, SQNRThreshold: cfg.Compare.SQNRThreshold,
				Progress: progress(cmd, "compare"),
			})
			if err != nil {
				return failed(err)
			}
			if err := writeCompareOutputs(cfg, res, cmd.Args().Get(0), cmd.Args().Get(1)); err != nil {
				return failed(err)
			}
			printCompare(cmd.Root().Writer, res)
			return nil
		},
	}
}

// checkReportPath refuses a report name whose format onnxq cannot tell.
func checkReportPath(p string) error {
	switch strings.ToLower(filepath.Ext(p)) {
	case "", ".json", ".csv", ".html", ".htm":
		if p != "" && strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)) == "" {
			return fmt.Errorf("%q has no file name", p)
		}
		return nil
	}
	return fmt.Errorf("%q: the report is .json, .csv or .html", p)
}

// writeCompareOutputs writes the --stats, --report and --plots files.
func writeCompareOutputs(cfg *overrides.Config, res *diagnose.Result, refPath, testPath string) error {
	if p := cfg.Compare.Stats; p != "" {
		d := compareReport(res, refPath, testPath)
		if err := atomicfile.Write(p, func(w io.Writer) error { return report.WriteTensorsCSV(w, d.Tensors) }); err != nil {
			return fmt.Errorf("--stats: %w", err)
		}
	}
	switch p := cfg.Compare.Report; strings.ToLower(filepath.Ext(p)) {
	case ".json":
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(p, append(b, '\n')); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	case ".csv":
		d := compareReport(res, refPath, testPath)
		if err := atomicfile.Write(p, func(w io.Writer) error { return report.WriteLayersCSV(w, append(d.Layers, d.Outputs...)) }); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	case ".html", ".htm":
		if err := writeHTMLReport(p, compareReport(res, refPath, testPath)); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if d := cfg.Compare.Plots; d != "" {
		if err := writePlots(d, compareReport(res, refPath, testPath)); err != nil {
			return fmt.Errorf("--plots: %w", err)
		}
	}
	return nil
}

// printCompare prints the output metrics, and for a layerwise run the first
// bad tensor, the worst contributor and the ten lowest SQNRs.
func printCompare(w io.Writer, res *diagnose.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "samples\t%d (%.2fs)\n", res.Samples, res.Seconds)
	fmt.Fprintln(tw, "output\tcosine\tSQNR dB\tMSE\tmax abs\ttop-1")
	for _, o := range res.Outputs {
		fmt.Fprintf(tw, "%s\t%s\n", o.Name, metricCells(o))
	}
	if len(res.Layers) > 0 {
		fmt.Fprintf(tw, "layerwise\t%d tensors matched\n", len(res.Layers))
		if res.FirstBad != "" {
			t := find(res, res.FirstBad)
			fmt.Fprintf(tw, "first bad\t%s (node %s, %s): cosine %.5f, SQNR %.2f dB (thresholds %.4g, %.4g dB)\n", t.Name, t.Node, t.OpType, t.Cosine, t.EffectiveSQNR(), res.Thresholds.Cos, res.Thresholds.SQNR)
		} else {
			fmt.Fprintf(tw, "first bad\tnone: every tensor meets cosine %.4g and SQNR %.4g dB\n", res.Thresholds.Cos, res.Thresholds.SQNR)
		}
		if res.WorstContributor != "" {
			t := find(res, res.WorstContributor)
			fmt.Fprintf(tw, "worst contributor\t%s (node %s, %s): adds noise-to-signal %.3g over its inputs', SQNR %.2f dB\n", t.Name, t.Node, t.OpType, res.WorstAddedNSR, t.EffectiveSQNR())
		}
		worst := slices.DeleteFunc(slices.Clone(res.Layers), func(t diagnose.TensorResult) bool { return t.Values == 0 })
		slices.SortStableFunc(worst, func(a, b diagnose.TensorResult) int { return cmpFloat(a.EffectiveSQNR(), b.EffectiveSQNR()) })
		fmt.Fprintln(tw, "lowest SQNR\tcosine\tSQNR dB\tchannel SQNR\tMSE\tmax abs\t")
		for _, t := range worst[:min(10, len(worst))] {
			if t.Values > 0 {
				fmt.Fprintf(tw, "  %s\t%s\n", t.Name, layerCells(t))
			}
		}
	}
	tw.Flush()
}

func metricCells(t diagnose.TensorResult) string {
	if t.Values == 0 {
		return "-\t-\t-\t-\t" + t.Note
	}
	top1 := "-"
	if t.Top1 != nil {
		top1 = fmt.Sprintf("%.2f%%", 100**t.Top1)
	}
	return fmt.Sprintf("%.6f\t%.2f\t%.4g\t%.4g\t%s", t.Cosine, t.SQNR, t.MSE, t.MaxAbs, top1)
}

// layerCells are metricCells with the channel SQNR.
func layerCells(t diagnose.TensorResult) string {
	ch := "-"
	if t.ChannelSQNR != nil {
		ch = fmt.Sprintf("%.2f", *t.ChannelSQNR)
	}
	return fmt.Sprintf("%.6f\t%.2f\t%s\t%.4g\t%.4g", t.Cosine, t.SQNR, ch, t.MSE, t.MaxAbs)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b || (math.IsNaN(a) && !math.IsNaN(b)):
		return -1
	case a > b || math.IsNaN(b):
		return 1
	}
	return 0
}

func find(res *diagnose.Result, name string) diagnose.TensorResult {
	for _, t := range append(slices.Clone(res.Layers), res.Outputs...) {
		if t.Name == name {
			return t
		}
	}
	return diagnose.TensorResult{Name: name}
}
