package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/report"
	"github.com/urfave/cli/v3"
)

// quantizeFlags are convert's flags without the output and measurement ones:
// what sensitivity and tune need to quantize a model as convert would.
func quantizeFlags() []convertFlag {
	var out []convertFlag
	for _, f := range convertFlags() {
		switch f.key {
		case "output", "report.json", "report.encodings":
			continue
		}
		out = append(out, f)
	}
	return out
}

func sensitivityCommand() *cli.Command {
	table := quantizeFlags()
	table = append(table, measureFlags(false)...)
	table = append(table,
		convertFlag{&cli.StringFlag{Name: "eval", Usage: "samples to measure on (default: the calibration data)"}, "compare.eval", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Eval = cmd.String("eval")
			return nil
		}},
		convertFlag{&cli.StringFlag{Name: "report", Usage: "write the ranking: .json, .csv or .html"}, "compare.report", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Report = cmd.String("report")
			return nil
		}},
		plotsFlag())
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "TOML run config (as for convert); flags override it"},
		&cli.StringFlag{Name: "mode", Value: diagnose.QuantOne, Usage: "quant-one: only one node quantized; float-one: only one node left in float"},
		&cli.BoolFlag{Name: "no-split", Usage: "do not measure weights and activations apart (a third of the runs)"},
		&cli.IntFlag{Name: "top", Value: 20, Usage: "print the N most sensitive nodes (0: all)"},
	}
	for _, f := range table {
		flags = append(flags, f.flag)
	}
	return &cli.Command{
		Name:      "sensitivity",
		Usage:     "rank nodes by how much their quantization costs at the outputs",
		ArgsUsage: "MODEL",
		Description: "Quantizes MODEL as convert would (same flags and overrides), then measures for each node (with the\n" +
			"activation grouped after it) the outputs against the float model when only that node's tensors are\n" +
			"quantized (--mode quant-one) or only that node is left in float (--mode float-one), also split into\n" +
			"weight-only and activation-only effect. Each variant runs only the nodes after its change.\n\n" +
			"   onnxq sensitivity model.onnx --calib calib/ --eval eval/ --report sens.csv\n" +
			"   onnxq sensitivity model.onnx --calib calib/ --mode float-one --overrides q.json",
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := runConfig(cmd, table)
			if err != nil {
				return err
			}
			mode := cmd.String("mode")
			if mode != diagnose.QuantOne && mode != diagnose.FloatOne {
				return usageError("sensitivity: --mode %q is not quant-one or float-one", mode)
			}
			if err := checkReportPath(cfg.Compare.Report); err != nil {
				return usageError("sensitivity: --report: %v", err)
			}
			if cfg.Calib.Path == "" {
				return usageError("sensitivity: --calib is required")
			}
			q, src, err := quantizeInMemory(ctx, cmd, cfg)
			if err != nil {
				return err
			}
			res, err := diagnose.Sensitivity(ctx, q.Float, q.Plan, src, diagnose.SensitivityOptions{
				Mode: mode, Threads: cfg.Threads, Split: !cmd.Bool("no-split"), Progress: progress(cmd, "sensitivity"),
			})
			if err != nil {
				return failed(err)
			}
			if err := writeSensitivity(cfg.Compare.Report, res, cfg.Model); err != nil {
				return failed(fmt.Errorf("--report: %w", err))
			}
			if d := cfg.Compare.Plots; d != "" {
				if err := writePlots(d, sensitivityReport(res, cfg.Model)); err != nil {
					return failed(fmt.Errorf("--plots: %w", err))
				}
			}
			printSensitivity(cmd.Root().Writer, res, int(cmd.Int("top")))
			return nil
		},
	}
}

// quantizeInMemory quantizes cfg's model as convert would, without writing
// it, and opens the samples to measure on (eval, or the calibration data).
func quantizeInMemory(ctx context.Context, cmd *cli.Command, cfg *overrides.Config) (*converter.Quantized, dataset.Source, error) {
	opt, err := convertOptions(cmd, cfg)
	if err != nil {
		return nil, nil, err
	}
	opt.Progress = nil
	q, err := converter.Quantize(ctx, opt, true)
	if err != nil {
		return nil, nil, failed(err)
	}
	data := cfg.Compare.Eval
	if data == "" {
		data = cfg.Calib.Path
	}
	src, err := dataset.Open(data, dataset.InputsOf(q.Float), opt.Dataset)
	if err != nil {
		return nil, nil, failed(err)
	}
	return q, src, nil
}

func writeSensitivity(p string, res *diagnose.SensitivityResult, model string) error {
	switch strings.ToLower(filepath.Ext(p)) {
	case "":
		return nil
	case ".json":
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteBytes(p, append(b, '\n'))
	case ".csv":
		return atomicfile.Write(p, func(w io.Writer) error { return report.WriteSensitivityCSV(w, sensitivityRows(res)) })
	}
	return writeHTMLReport(p, sensitivityReport(res, model))
}

func printSensitivity(w io.Writer, res *diagnose.SensitivityResult, top int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	what := "only this node quantized"
	if res.Mode == diagnose.FloatOne {
		what = "only this node in float"
		if res.All != nil {
			fmt.Fprintf(tw, "all quantized\tcosine %.6f, SQNR %.2f dB\n", res.All.Cosine, res.All.SQNR)
		}
	}
	fmt.Fprintf(tw, "sensitivity\t%d nodes, %d samples, %s (%.1fs; variants ran %.0f%% of the nodes on average)\n", len(res.Rows), res.Samples, what, res.Seconds, 100*res.SuffixShare)
	fmt.Fprintln(tw, "rank\tnode\top\tcosine\tSQNR dB\tweights only\tactivations only")
	eff := func(e *diagnose.Effect) string {
		if e == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f dB", e.SQNR)
	}
	for _, r := range res.Rows {
		if top > 0 && r.Rank > top {
			fmt.Fprintf(tw, "...\t%d more (--top 0 or --report for all)\n", len(res.Rows)-top)
			break
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.6f\t%.2f\t%s\t%s\n", r.Rank, r.Node, r.OpType, r.Cosine, r.SQNR, eff(r.Weight), eff(r.Activation))
	}
	tw.Flush()
}
