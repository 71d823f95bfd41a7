package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/overrides"
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
			&cli.IntFlag{Name: "weight-block-size", Usage: "quantize MatMul/Gemm weights in blocks of N along the reduction axis (opset 21)"},
			&cli.BoolFlag{Name: "activation-symmetric", Usage: "symmetric activation ranges (zero point 0 for signed types)"},
			&cli.StringFlag{Name: "passes", Value: "default", Usage: "float passes before calibration (see onnxq passes)"},
			&cli.BoolFlag{Name: "cle", Usage: "add cross-layer equalization to the passes"},
			&cli.BoolFlag{Name: "bias-correction", Usage: "correct biases for weight quantization error with input means measured on the calibration data"},
			&cli.StringFlag{Name: "report", Usage: "write the report as JSON"},
			&cli.StringFlag{Name: "overrides", Usage: "onnxq overrides JSON with explicit encodings (those tensors are not calibrated)"},
			&cli.StringFlag{Name: "encodings-out", Usage: "write the final encodings as overrides JSON (feed back with --overrides to reproduce the model)"},
			&cli.StringFlag{Name: "image-resize", Value: "bilinear", Usage: "images: nearest, bilinear or bicubic"},
			&cli.IntFlag{Name: "image-short-side", Usage: "images: resize the short side to N, then center-crop to the input size"},
			&cli.StringFlag{Name: "image-size", Usage: "images: HxW when the model input has no static size"},
			&cli.StringFlag{Name: "image-channels", Value: "RGB", Usage: "images: RGB, BGR or GRAY"},
			&cli.StringFlag{Name: "image-layout", Value: "NCHW", Usage: "images: NCHW or NHWC"},
			&cli.StringFlag{Name: "image-mean", Usage: "images: per-channel mean after scaling, e.g. 0.485,0.456,0.406"},
			&cli.StringFlag{Name: "image-std", Usage: "images: per-channel std after scaling, e.g. 0.229,0.224,0.225"},
			&cli.FloatFlag{Name: "image-scale", Value: 1.0 / 255, Usage: "images: pixel (0..255) multiplier before mean/std"},
			&cli.StringFlag{Name: "raw-shape", Usage: ".bin/.raw samples: their shape, e.g. 1,3,224,224"},
			&cli.StringFlag{Name: "raw-type", Value: "float32", Usage: ".bin/.raw samples: their element type"},
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
				WeightBlockSize: int(cmd.Int("weight-block-size")), ActSymmetric: cmd.Bool("activation-symmetric"),
				Passes: cmd.String("passes"), CLE: cmd.Bool("cle"), Threads: int(cmd.Int("threads")),
				BiasCorrection: cmd.Bool("bias-correction"),
			}
			opt.Dataset.Limit = int(cmd.Int("calib-size"))
			opt.EncodingsOut = cmd.String("encodings-out")
			if p := cmd.String("overrides"); p != "" {
				f, _, err := overrides.LoadAny(p)
				if err != nil {
					return failed(err)
				}
				opt.Overrides = f
			}
			if err := datasetFlags(cmd, &opt); err != nil {
				return err
			}
			if cmd.Int("weight-block-size") < 0 || (cmd.Int("weight-block-size") > 0 && cmd.Bool("per-tensor-weights")) {
				return usageError("convert: --weight-block-size must be positive and does not go with --per-tensor-weights")
			}
			if act.BitWidth() == 4 && obs.Kind == "entropy" {
				return usageError("convert: 4-bit activations with the entropy observer are not supported (its threshold search assumes at least 8 bits); use minmax, percentile or mse")
			}
			switch act {
			case graph.Uint8, graph.Int8, graph.Uint16, graph.Int16:
			default:
				return usageError("convert: --activation-type %s is not supported (uint8, int8, uint16, int16)", act.Short())
			}
			switch wt {
			case graph.Int8, graph.Uint8, graph.Int16, graph.Int4:
			default:
				return usageError("convert: --weight-type %s is not supported (int8, uint8, int16, int4)", wt.Short())
			}
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
	if len(rep.FloatTensors) > 0 {
		fmt.Fprintf(tw, "float tensors\t%d (by overrides)\n", len(rep.FloatTensors))
		for _, f := range rep.FloatTensors {
			fmt.Fprintf(tw, "\t  %s: %s\n", f.Name, f.Reason)
		}
	}
	overridden := 0
	for _, t := range rep.Tensors {
		if t.Override != "" || t.Observer == "overrides" {
			overridden++
		}
	}
	if overridden > 0 {
		fmt.Fprintf(tw, "overridden\t%d tensors (see --report)\n", overridden)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(tw, "warning\t%s\n", w)
	}
	phases := []string{"load", "passes", "calibration", "quantize", "save"}
	var ps []string
	for _, p := range phases {
		ps = append(ps, fmt.Sprintf("%s %.2fs", p, rep.PhaseSeconds[p]))
	}
	fmt.Fprintf(tw, "time\t%s\n", strings.Join(ps, ", "))
	fmt.Fprintf(tw, "peak RSS\t%.1f MiB\n", float64(rss.Peak())/(1<<20))
	tw.Flush()
}

// datasetFlags reads the image and raw-file options.
func datasetFlags(cmd *cli.Command, opt *converter.Options) error {
	floats := func(name string) ([]float32, error) {
		v := cmd.String(name)
		if v == "" {
			return nil, nil
		}
		var out []float32
		for _, p := range strings.Split(v, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
			if err != nil {
				return nil, usageError("convert: --%s: %q is not a number", name, p)
			}
			out = append(out, float32(f))
		}
		return out, nil
	}
	im := &opt.Dataset.Image
	im.Resize, im.Channels, im.Layout = cmd.String("image-resize"), cmd.String("image-channels"), cmd.String("image-layout")
	im.ShortSide, im.Scale = int(cmd.Int("image-short-side")), float32(cmd.Float("image-scale"))
	var err error
	if im.Mean, err = floats("image-mean"); err != nil {
		return err
	}
	if im.Std, err = floats("image-std"); err != nil {
		return err
	}
	if sz := cmd.String("image-size"); sz != "" {
		h, w, ok := strings.Cut(strings.ToLower(sz), "x")
		hh, err1 := strconv.Atoi(h)
		ww, err2 := strconv.Atoi(w)
		if !ok || err1 != nil || err2 != nil || hh <= 0 || ww <= 0 {
			return usageError("convert: --image-size %q is not HxW", sz)
		}
		im.Height, im.Width = hh, ww
	}
	if rs := cmd.String("raw-shape"); rs != "" {
		for _, p := range strings.Split(rs, ",") {
			d, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || d < 0 {
				return usageError("convert: --raw-shape %q: %q is not a dimension", rs, p)
			}
			opt.Dataset.RawShape = append(opt.Dataset.RawShape, d)
		}
		dt, err := graph.ParseDataType(cmd.String("raw-type"))
		if err != nil {
			return usageError("convert: --raw-type: %v", err)
		}
		opt.Dataset.RawType = dt
	}
	return nil
}
