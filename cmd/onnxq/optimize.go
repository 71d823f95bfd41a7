package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/passes"
	"github.com/urfave/cli/v3"
)

func optimizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "optimize",
		Usage:     "run float passes (cleanup, fold-bn, upgrade-opset, cle, ...) and write the model",
		ArgsUsage: "MODEL",
		Description: "Runs the passes in order and writes the result atomically; nothing is written when a\n" +
			"pass fails. --passes none is a plain round trip; the default is the cleanup passes and fold-bn.\n\n" +
			"   onnxq optimize model.onnx -o model.opt.onnx\n" +
			"   onnxq optimize model.onnx -o out.onnx --passes default,upgrade-opset:17,cle --verify --report passes.json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output model path (required)"},
			&cli.StringFlag{Name: "passes", Value: "default", Usage: "comma-separated passes; `onnxq passes` lists them"},
			&cli.BoolFlag{Name: "verify", Usage: "run the model before and after each float pass and fail if an output moves beyond the pass's tolerance"},
			&cli.StringSliceFlag{Name: "verify-input", Usage: "NAME=FILE.npy (or .pb): a verification input (others are seeded)"},
			&cli.StringSliceFlag{Name: "input-shape", Usage: "NAME=D1,D2,...: the shape of a seeded verification input with symbolic dims"},
			&cli.StringFlag{Name: "report", Usage: "write what each pass changed as JSON"},
			&cli.IntFlag{Name: "opset", Usage: "target of upgrade-opset (default 21)"},
			&cli.BoolFlag{Name: "fold-bn", Value: true, Usage: "run fold-bn where the pass list has it (--fold-bn=false turns it off)"},
			&cli.StringSliceFlag{Name: "fold-bn-skip", Usage: "BatchNormalization node names fold-bn leaves alone"},
			&cli.StringFlag{Name: "standalone-bn", Value: "muladd", Usage: "a BN with no foldable producer: muladd or keep"},
			&cli.Int64Flag{Name: "external-data-threshold", Usage: "write initializers of at least this many bytes to OUT.data (models over 2 GiB need it); default: keep external data external, the rest inline"},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			path, err := oneArg(cmd, "MODEL")
			if err != nil {
				return err
			}
			out := cmd.String("output")
			if out == "" {
				return usageError("optimize: --output is required")
			}
			opts := passes.Options{Opset: int64(cmd.Int("opset")), FoldBNSkip: cmd.StringSlice("fold-bn-skip"), StandaloneBN: cmd.String("standalone-bn")}
			list, err := passes.Parse(cmd.String("passes"), opts)
			if err != nil {
				return usageError("optimize: %v", err)
			}
			if !cmd.Bool("fold-bn") {
				kept := list[:0]
				for _, p := range list {
					if p.Name() != "fold-bn" {
						kept = append(kept, p)
					}
				}
				list = kept
			}
			if abs(out) == abs(path) {
				return usageError("optimize: the output would overwrite the input model")
			}
			m, err := graph.Load(path)
			if err != nil {
				return failed(err)
			}
			pl := &passes.Pipeline{Passes: list}
			if cmd.Bool("verify") {
				v, err := verifier(cmd.StringSlice("verify-input"), cmd.StringSlice("input-shape"))
				if err != nil {
					return err
				}
				pl.Verify = v
			}
			rep, err := pl.Run(m)
			if err != nil {
				return failed(err)
			}
			if err := graph.SaveWith(m, out, graph.SaveOptions{ExternalThreshold: cmd.Int64("external-data-threshold")}); err != nil {
				return failed(err)
			}
			if p := cmd.String("report"); p != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := atomicfile.WriteBytes(p, append(b, '\n')); err != nil {
					return failed(err)
				}
			}
			printChanges(cmd.Root().ErrWriter, rep)
			return nil
		},
	}
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func verifier(inputs, shapes []string) (*passes.Verifier, error) {
	v := &passes.Verifier{Inputs: map[string]*graph.Tensor{}, Shapes: map[string][]int{}, Seed: 1}
	for _, spec := range inputs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usageError("optimize: --verify-input %q is not NAME=FILE.npy", spec)
		}
		t, err := readTensorFile(file)
		if err != nil {
			return nil, failed(fmt.Errorf("--verify-input %s: %w", name, err))
		}
		v.Inputs[name] = t
	}
	for _, spec := range shapes {
		name, dims, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usageError("optimize: --input-shape %q is not NAME=D1,D2,...", spec)
		}
		var shape []int
		for _, d := range strings.Split(dims, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(d))
			if err != nil || n < 0 {
				return nil, usageError("optimize: --input-shape %q: %q is not a dimension", spec, d)
			}
			shape = append(shape, n)
		}
		v.Shapes[name] = shape
	}
	return v, nil
}

func printChanges(w io.Writer, rep *passes.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range rep.Changes {
		diff := ""
		if c.MaxRelDiff >= 0 {
			diff = fmt.Sprintf("output change %.2g", c.MaxRelDiff)
		}
		fmt.Fprintf(tw, "%s\t%d changed\t%s\n", c.Pass, c.Count, diff)
		if c.Pass == "cle" { // why layers were left alone
			for _, n := range c.Notes {
				fmt.Fprintf(tw, "\t  %s\n", n)
			}
		}
	}
	tw.Flush()
}

func passesCommand() *cli.Command {
	return &cli.Command{
		Name:  "passes",
		Usage: "list the float passes",
		Action: func(_ context.Context, cmd *cli.Command) error {
			w := tabwriter.NewWriter(cmd.Root().Writer, 0, 4, 2, ' ', 0)
			for _, n := range passes.Names() {
				fmt.Fprintf(w, "%s\t%s\n", n, passes.Describe(n))
			}
			fmt.Fprintf(w, "\ndefault\t%s\n", strings.Join(passes.DefaultList, ","))
			return w.Flush()
		},
	}
}
