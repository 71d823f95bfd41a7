// Command onnxq quantizes ONNX models and inspects them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v3"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the
// VCS revision the binary was built from is used.
var version = ""

const examples = `Examples:
   onnxq convert model.onnx -o model.qdq.onnx --calib calib/
   onnxq inspect model.onnx
   onnxq inspect model.onnx --json > summary.json
   onnxq run model.onnx --input x=image.npy --output-dir out/
   onnxq run model.onnx --input image.npy --repeat 20 --timing --threads 1
   onnxq optimize model.onnx -o model.opt.onnx --passes default,upgrade-opset:17 --verify
   onnxq encodings export enc.json --format aimet-1.0 -o enc.aimet.json
   onnxq passes
   onnxq version`

// runError marks a failed run (exit 1), as opposed to a usage error (exit 2).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// failed wraps an error from the work a command does.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return runError{err}
}

// usageError is a mistake in how the command was called.
func usageError(format string, args ...any) error { return fmt.Errorf(format, args...) }

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code: 0 success, 1 failed run, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	// Bad input must never end in a Go panic: a panic here is a bug, reported as
	// one line with exit 1.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "onnxq: internal error: %v (please report this with the command line)\n", r)
			code = 1
		}
	}()
	root := newRoot(stdout, stderr)
	err := root.Run(ctx, args)
	if err == nil {
		return 0
	}
	code = 2
	var re runError
	if errors.As(err, &re) {
		code = 1
	}
	// One line per error: joined errors (e.g. several validation problems) are
	// split, and each line says which program speaks.
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintf(stderr, "onnxq: %s\n", line)
	}
	if code == 2 {
		fmt.Fprintln(stderr, "onnxq: see 'onnxq --help'")
	}
	return code
}

func newRoot(stdout, stderr io.Writer) *cli.Command {
	root := &cli.Command{
		Name:        "onnxq",
		Usage:       "post-training quantization for ONNX models",
		Description: "onnxq reads an FP32 ONNX model and writes a QDQ model that runtimes execute in integer arithmetic.\n\n" + examples,
		Version:     buildVersion(),
		HideVersion: true,
		Writer:      stdout,
		ErrWriter:   stderr,
		// Errors are printed once, by run, with the right exit code.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands: []*cli.Command{
			convertCommand(),
			compareCommand(),
			sensitivityCommand(),
			tuneCommand(),
			inspectCommand(),
			runCommand(),
			optimizeCommand(),
			passesCommand(),
			encodingsCommand(),
			{
				Name:  "version",
				Usage: "print the onnxq version",
				Action: func(_ context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() > 0 {
						return usageError("version takes no arguments")
					}
					fmt.Fprintln(cmd.Root().Writer, "onnxq", buildVersion())
					return nil
				},
			},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return usageError("unknown command %q", cmd.Args().First())
			}
			return cli.ShowAppHelp(cmd)
		},
	}
	configure(root)
	return root
}

// configure sets, on every command: usage errors handed back unprinted (by
// default the library prints the command's whole help; run prints one line), and
// no splitting of repeated flag values at commas (paths and shapes contain them;
// the library reads this per command).
func configure(cmd *cli.Command) {
	cmd.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err }
	cmd.DisableSliceFlagSeparator = true
	for _, sub := range cmd.Commands {
		configure(sub)
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// oneArg returns the single positional argument a command takes.
func oneArg(cmd *cli.Command, what string) (string, error) {
	switch cmd.Args().Len() {
	case 0:
		return "", usageError("%s: missing %s", cmd.Name, what)
	case 1:
		return cmd.Args().First(), nil
	}
	return "", usageError("%s: expected one %s, got %d arguments", cmd.Name, what, cmd.Args().Len())
}
