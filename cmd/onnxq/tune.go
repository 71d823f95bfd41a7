package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/tune"
	"github.com/urfave/cli/v3"
)

func tuneFlagTable() []convertFlag {
	table := quantizeFlags()
	str := func(name, key, usage string, dst func(*overrides.Config) *string) convertFlag {
		return convertFlag{&cli.StringFlag{Name: name, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = cmd.String(name)
			return nil
		}}
	}
	flt := func(name, key, usage string, dst func(*overrides.Config) *float64) convertFlag {
		return convertFlag{&cli.FloatFlag{Name: name, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = cmd.Float(name)
			return nil
		}}
	}
	d := overrides.DefaultConfig()
	return append(table,
		convertFlag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "also write the tuned QDQ model"}, "output", func(c *overrides.Config, cmd *cli.Command) error {
			c.Output = cmd.String("output")
			return nil
		}},
		str("eval", "compare.eval", "samples held apart from calibration to measure the target on (default: the calibration data)", func(c *overrides.Config) *string { return &c.Compare.Eval }),
		flt("target-cos", "tune.target_cos", "target: the worst output's cosine to the float model", func(c *overrides.Config) *float64 { return &c.Tune.TargetCos }),
		flt("target-sqnr", "tune.target_sqnr", "target: the worst output's SQNR (dB) to the float model", func(c *overrides.Config) *float64 { return &c.Tune.TargetSQNR }),
		str("eval-cmd", "tune.eval_cmd", "target: your accuracy command; it gets the candidate model path ({model}, or appended) and prints one number", func(c *overrides.Config) *string { return &c.Tune.EvalCmd }),
		flt("target", "tune.target", "with --eval-cmd: the number to reach", func(c *overrides.Config) *float64 { return &c.Tune.Target }),
		convertFlag{&cli.BoolFlag{Name: "lower-is-better", Usage: "with --eval-cmd: the number is an error (WER, perplexity): reach it from above"}, "tune.lower_is_better", func(c *overrides.Config, cmd *cli.Command) error {
			c.Tune.LowerIsBetter = cmd.Bool("lower-is-better")
			return nil
		}},
		convertFlag{&cli.StringFlag{Name: "prefer", Value: d.Tune.Prefer, Usage: "a raised node gets: int16 (16-bit activations, int8 weights under 4-bit), int8 (int8 weights under 4-bit), float"}, "tune.prefer", func(c *overrides.Config, cmd *cli.Command) error {
			c.Tune.Prefer = cmd.String("prefer")
			return nil
		}},
		convertFlag{&cli.IntFlag{Name: "max-raise", Aliases: []string{"max-float"}, Usage: "raise at most N nodes (0: no cap)"}, "tune.max_raise", func(c *overrides.Config, cmd *cli.Command) error {
			c.Tune.MaxRaise = int(cmd.Int("max-raise"))
			return nil
		}},
		convertFlag{&cli.IntFlag{Name: "rank-samples", Usage: "rank the nodes on the first N evaluation samples (0: 8)"}, "tune.rank_samples", func(c *overrides.Config, cmd *cli.Command) error {
			c.Tune.RankSamples = int(cmd.Int("rank-samples"))
			return nil
		}},
		str("overrides-out", "tune.overrides_out", "write the result as an overrides file that convert --overrides takes", func(c *overrides.Config) *string { return &c.Tune.OverridesOut }),
		convertFlag{&cli.StringFlag{Name: "format", Value: d.Tune.Format, Usage: "--overrides-out dialect: onnxq (your overrides plus the raised tensors) or aimet (QNN type-only entries)"}, "tune.format", func(c *overrides.Config, cmd *cli.Command) error {
			c.Tune.Format = cmd.String("format")
			return nil
		}},
		str("report", "compare.report", "write the search (ranking, steps, trade-off): .json or .html", func(c *overrides.Config) *string { return &c.Compare.Report }),
		plotsFlag(),
	)
}

func tuneCommand() *cli.Command {
	table := tuneFlagTable()
	flags := []cli.Flag{&cli.StringFlag{Name: "config", Usage: "TOML run config (as for convert, with a [tune] table); flags override it"}}
	for _, f := range table {
		flags = append(flags, f.flag)
	}
	return &cli.Command{
		Name:      "tune",
		Usage:     "find the few nodes to raise to 16 bits (or leave in float) so the converted model meets a target",
		ArgsUsage: "MODEL",
		Description: "Ranks the quantized nodes by how much quantizing each alone costs, raises the first N for growing N\n" +
			"until the target holds on --eval data, bisects to the smallest N, then drops raised nodes the target does\n" +
			"not need. The result is an overrides file convert takes unchanged.\n\n" +
			"   onnxq tune model.onnx --calib calib/ --eval eval/ --target-cos 0.995 --overrides-out q.json\n" +
			"   onnxq tune model.onnx --calib calib/ --eval-cmd './acc.sh {model}' --target 0.85 --prefer float -o model.qdq.onnx",
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := runConfig(cmd, table)
			if err != nil {
				return err
			}
			if cfg.Calib.Path == "" {
				return usageError("tune: --calib is required")
			}
			if p := cfg.Compare.Report; p != "" && !strings.HasSuffix(strings.ToLower(p), ".json") && !strings.HasSuffix(strings.ToLower(p), ".html") {
				return usageError("tune: --report %q: the report is .json or .html", p)
			}
			if cfg.Output != "" {
				if err := checkOutput(cfg); err != nil {
					return err
				}
			}
			if cfg.Tune.OverridesOut == "" && cfg.Output == "" {
				return usageError("tune: give --overrides-out (and/or -o): otherwise the result is lost")
			}
			copt, err := convertOptions(cmd, cfg)
			if err != nil {
				return err
			}
			copt.Progress = nil
			t := cfg.Tune
			errw := cmd.Root().ErrWriter
			res, err := tune.Run(ctx, tune.Options{
				Convert: copt, Eval: cfg.Compare.Eval,
				TargetCos: t.TargetCos, TargetSQNR: t.TargetSQNR, EvalCmd: t.EvalCmd, Target: t.Target, LowerIsBetter: t.LowerIsBetter,
				Prefer: t.Prefer, MaxRaise: t.MaxRaise, RankSamples: t.RankSamples,
				Log: func(format string, args ...any) { fmt.Fprintf(errw, "tune: "+format+"\n", args...) },
			})
			if err != nil && !errors.Is(err, tune.ErrNotMet) {
				return failed(err)
			}
			notMet := err
			if werr := writeTuneOutputs(cfg, res, notMet != nil); werr != nil {
				return failed(werr)
			}
			printTune(cmd.Root().Writer, res)
			if notMet != nil {
				return failed(fmt.Errorf("tune: %v; best overrides written to %s", notMet, unmetName(cfg)))
			}
			return nil
		},
	}
}

// unmetName is where the best overrides go when the target was not met, so
// a pipeline never takes them for a result.
func unmetName(cfg *overrides.Config) string {
	p := cfg.Tune.OverridesOut
	if p == "" {
		p = strings.TrimSuffix(cfg.Output, filepath.Ext(cfg.Output)) + ".overrides.json"
	}
	return strings.TrimSuffix(p, filepath.Ext(p)) + ".best-unmet" + filepath.Ext(p)
}

func writeTuneOutputs(cfg *overrides.Config, res *tune.Result, unmet bool) error {
	if res.Overrides != nil {
		p := cfg.Tune.OverridesOut
		if unmet {
			p = unmetName(cfg)
		}
		if p != "" {
			f := res.Overrides
			dialect := overrides.ONNXQ
			if cfg.Tune.Format == "aimet" {
				dialect = overrides.AIMET10
				var err error
				if f, err = overrides.TypeOnlyFile(res.Types); err != nil {
					return err
				}
			}
			if err := f.WriteAs(p, dialect); err != nil {
				return fmt.Errorf("--overrides-out: %w", err)
			}
		}
		if cfg.Output != "" && !unmet {
			if err := graph.Save(res.Model, cfg.Output); err != nil {
				return err
			}
		}
	}
	if d := cfg.Compare.Plots; d != "" {
		if err := writePlots(d, tuneReport(res, cfg.Model)); err != nil {
			return fmt.Errorf("--plots: %w", err)
		}
	}
	switch p := cfg.Compare.Report; strings.ToLower(filepath.Ext(p)) {
	case ".json":
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteBytes(p, append(b, '\n'))
	case ".html":
		return writeHTMLReport(p, tuneReport(res, cfg.Model))
	}
	return nil
}

func printTune(w io.Writer, res *tune.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "step\traised\tmetric\tmodel MB\tint8 MACs\t")
	for _, s := range res.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%.6g\t%.2f\t%.1f%%\t%s\n", s.Phase, s.Raised, s.Metric, float64(s.SizeBytes)/(1<<20), 100*s.Int8MACShare, map[bool]string{true: "meets", false: "misses"}[s.Met])
	}
	b := res.Best
	verdict := "meets"
	if !b.Met {
		verdict = "does NOT meet"
	}
	fmt.Fprintf(tw, "result\t%d of %d nodes raised to %s: %s %.6g %s the target %.6g (%.1fs)\n", b.Raised, res.Units, res.Prefer, res.Metric, b.Metric, verdict, res.Target, res.Seconds)
	for _, n := range b.Nodes {
		fmt.Fprintf(tw, "\t  %s\n", n)
	}
	tw.Flush()
}
