package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "quantize a model: float passes, calibration, QDQ insertion",
		ArgsUsage: "MODEL",
		Description: "Runs the float passes, calibrates activation ranges on --calib data, and writes a QDQ model\n" +
			"with int8 weights, int32 biases and uint8 activations by default.\n\n" +
			"   onnxq convert model.onnx -o model.qdq.onnx --calib calib/\n" +
			"   onnxq convert model.onnx -o model.qdq.onnx --calib list.txt --observer entropy --report report.json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output QDQ model (required)"},
			&cli.StringFlag{Name: "calib", Usage: "calibration data: a folder of .npy/.bin/.png/.jpg, per-input subfolders, or a list file"},
			&cli.IntFlag{Name: "calib-size", Usage: "use at most N samples (sorted order)"},
			&cli.StringFlag{Name: "observer", Value: "minmax", Usage: "minmax, percentile, entropy or mse"},
			&cli.FloatFlag{Name: "percentile", Value: 99.99, Usage: "for --observer percentile"},
			&cli.StringFlag{Name: "activation-type", Value: "uint8", Usage: "uint8, int8, uint16 or int16"},
			&cli.StringFlag{Name: "weight-type", Value: "int8", Usage: "int8, uint8, int16 (symmetric)"},
			&cli.BoolFlag{Name: "per-tensor-weights", Usage: "one weight scale per tensor instead of per output channel"},
			&cli.StringFlag{Name: "passes", Value: "default", Usage: "float passes before calibration (see onnxq passes)"},
			&cli.BoolFlag{Name: "cle", Usage: "add cross-layer equalization to the passes"},
			&cli.StringFlag{Name: "report", Usage: "write the report as JSON"},
			&cli.IntFlag{Name: "threads", Usage: "threads for calibration (0: all cores)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			path, err := oneArg(cmd, "MODEL")
			if err != nil {
				return err
			}
			out := cmd.String("output")
			if out == "" {
				return usageError("convert: --output is required")
			}
			if abs(out) == abs(path) {
				return usageError("convert: the output would overwrite the input model")
			}
			act, err := graph.ParseDataType(cmd.String("activation-type"))
			if err != nil {
				return usageError("convert: --activation-type: %v", err)
			}
			wt, err := graph.ParseDataType(cmd.String("weight-type"))
			if err != nil {
				return usageError("convert: --weight-type: %v", err)
			}
			obs := calib.Config{Kind: cmd.String("observer"), Percentile: cmd.Float("percentile")}
			if _, err := calib.New(obs); err != nil {
				return usageError("convert: %v", err)
			}
			opt := converter.Options{
				Model: path, Output: out, Calib: cmd.String("calib"), Observer: obs,
				ActType: act, WeightType: wt, WeightPerTensor: cmd.Bool("per-tensor-weights"),
				Passes: cmd.String("passes"), CLE: cmd.Bool("cle"), Threads: int(cmd.Int("threads")),
			}
			opt.Dataset.Limit = int(cmd.Int("calib-size"))
			errw := cmd.Root().ErrWriter
			if f, ok := errw.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				opt.Progress = func(pass, done, total int) {
					fmt.Fprintf(errw, "\rcalibration pass %d: %d/%d samples", pass+1, done, total)
					if done == total {
						fmt.Fprintln(errw)
					}
				}
			}
			rep, err := converter.Convert(ctx, opt)
			if err != nil {
				return failed(err)
			}
			if p := cmd.String("report"); p != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := writeFileAtomic(p, append(b, '\n')); err != nil {
					return failed(err)
				}
			}
			printConvertSummary(errw, rep)
			return nil
		},
	}
}

func printConvertSummary(w io.Writer, rep *converter.Report) {
	counts := map[string]int{}
	for _, t := range rep.Tensors {
		counts[t.Kind]++
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "wrote\t%s\n", rep.Output)
	fmt.Fprintf(tw, "calibration\t%d samples\n", rep.Samples)
	fmt.Fprintf(tw, "quantized\t%d activations, %d weights, %d biases\n", counts["activation"], counts["weight"], counts["bias"])
	reasons := map[string]int{}
	for _, f := range rep.FloatNodes {
		reasons[f.OpType+": "+f.Reason]++
	}
	var lines []string
	for r, n := range reasons {
		lines = append(lines, fmt.Sprintf("%d x %s", n, r))
	}
	sort.Strings(lines)
	fmt.Fprintf(tw, "left in float\t%d nodes\n", len(rep.FloatNodes))
	for _, l := range lines {
		fmt.Fprintf(tw, "\t  %s\n", l)
	}
	phases := []string{"load", "passes", "calibration", "quantize", "save"}
	var ps []string
	for _, p := range phases {
		ps = append(ps, fmt.Sprintf("%s %.2fs", p, rep.PhaseSeconds[p]))
	}
	fmt.Fprintf(tw, "time\t%s\n", strings.Join(ps, ", "))
	tw.Flush()
}
