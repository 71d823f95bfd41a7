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

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
	"github.com/urfave/cli/v3"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "summarize a model: versions, inputs and outputs, op types, parameters",
		ArgsUsage: "MODEL",
		Description: "Prints the IR version, opset imports, producer, inputs and outputs with element\n" +
			"types and shapes (symbolic dims by name), the op-type histogram, the parameter count and\n" +
			"bytes (initializers and Constant nodes), external data files and subgraphs.\n\n" +
			"   onnxq inspect model.onnx\n   onnxq inspect model.onnx --json | jq .parameters",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON"},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			path, err := oneArg(cmd, "MODEL")
			if err != nil {
				return err
			}
			m, err := graph.LoadWith(path, graph.LoadOptions{LazyExternal: true})
			if err != nil {
				return failed(err)
			}
			s := graph.Summarize(m)
			missing := unsupportedOps(m)
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return failed(enc.Encode(struct {
					graph.Summary
					Unsupported []string `json:"unsupported_ops"`
				}{s, missing}))
			}
			var size int64
			if st, err := os.Stat(path); err == nil {
				size = st.Size()
			}
			if err := printSummary(w, path, size, s); err != nil {
				return failed(err)
			}
			if len(missing) > 0 {
				fmt.Fprintf(w, "onnxq cannot run (run, convert, compare would stop at them): %s\n", strings.Join(missing, ", "))
			}
			return nil
		},
	}
}

func printSummary(w io.Writer, path string, size int64, s graph.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	opsets := make([]string, len(s.Opsets))
	for i, o := range s.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		opsets[i] = fmt.Sprintf("%s %d", d, o.Version)
	}
	producer := strings.TrimSpace(s.ProducerName + " " + s.ProducerVersion)
	if producer == "" {
		producer = "(none)"
	}
	fmt.Fprintf(tw, "model\t%s (%s)\n", path, humanBytes(size))
	fmt.Fprintf(tw, "ir_version\t%d\n", s.IRVersion)
	fmt.Fprintf(tw, "opsets\t%s\n", strings.Join(opsets, ", "))
	fmt.Fprintf(tw, "producer\t%s\n", producer)
	fmt.Fprintf(tw, "graph\t%q: %d nodes, %d initializers, %d constant nodes\n", s.GraphName, s.Nodes, s.Initializers, s.ConstantNodes)
	fmt.Fprintf(tw, "parameters\t%s (%s)%s\n", groupDigits(s.Parameters), humanBytes(s.ParameterBytes), byType(s.ParametersByType))
	ext := "none"
	if len(s.ExternalDataFiles) > 0 {
		ext = strings.Join(s.ExternalDataFiles, ", ")
	}
	fmt.Fprintf(tw, "external data\t%s\n", ext)
	fmt.Fprintf(tw, "subgraphs\t%d\n", s.Subgraphs)
	if s.Functions > 0 {
		fmt.Fprintf(tw, "functions\t%d\n", s.Functions)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	section := func(title string, vs []graph.ValueSummary) {
		fmt.Fprintf(tw, "%s (%d)\n", title, len(vs))
		for _, v := range vs {
			fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Type)
		}
	}
	section("inputs", s.Inputs)
	section("outputs", s.Outputs)
	fmt.Fprintf(tw, "op types (%d)\n", len(s.OpTypes))
	for _, o := range s.OpTypes {
		fmt.Fprintf(tw, "  %s\t%d\n", o.Op, o.Count)
	}
	return tw.Flush()
}

func byType(m map[string]int64) string {
	if len(m) <= 1 {
		return ""
	}
	var parts []string
	for _, t := range []string{"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int4", "uint4", "int16", "uint16", "int32", "int64", "bool"} {
		if n, ok := m[t]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", t, groupDigits(n)))
		}
	}
	return ": " + strings.Join(parts, ", ")
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// unsupportedOps lists the op types of m, its subgraphs included, that
// onnxq's executor has no kernel for at the model's opset ("domain:op" off
// the ONNX domain), sorted.
func unsupportedOps(m *graph.Model) []string {
	seen := map[string]bool{}
	var out []string
	check := func(domain, op string) {
		name := op
		if !graph.IsStandardDomain(domain) {
			name = domain + ":" + op
		}
		if !seen[name] && !kernels.Supported(domain, op, m.OpsetVersion(domain)) {
			out = append(out, name)
		}
		seen[name] = true
	}
	var walk func(gs []*onnxpb.GraphProto)
	walk = func(gs []*onnxpb.GraphProto) {
		for _, g := range gs {
			for _, n := range g.Node {
				check(n.GetDomain(), n.GetOpType())
				for _, a := range n.Attribute {
					if a.G != nil {
						walk([]*onnxpb.GraphProto{a.G})
					}
					walk(a.Graphs)
				}
			}
		}
	}
	for _, n := range m.Graph.Nodes {
		check(n.Domain, n.OpType)
		walk(n.Subgraphs())
	}
	sort.Strings(out)
	return out
}
