package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/internal/atomicfile"
)

// WritePlots writes the report's figures as PNG files into dir (created if
// missing): layers-sqnr.png, layers-cosine.png, sensitivity.png,
// tune-*.png and one hist-TENSOR.png per tensor with a histogram, the tensor
// name made safe for a file name.
func WritePlots(dir string, d *Data) error {
	if d == nil {
		return fmt.Errorf("report: no data")
	}
	figs, err := allFigures(d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for _, f := range figs {
		path := filepath.Join(dir, f.name+".png")
		if err := atomicfile.Write(path, func(w io.Writer) error { return f.render(w, "png") }); err != nil {
			return fmt.Errorf("report: writing %s: %w", path, err)
		}
	}
	return nil
}

// allFigures builds every figure of d in page order.
func allFigures(d *Data) ([]*figure, error) {
	figs, err := layerFigures(d)
	if err != nil {
		return nil, err
	}
	sf, err := sensitivityFigure(d)
	if err != nil {
		return nil, err
	}
	if sf != nil {
		figs = append(figs, sf)
	}
	tf, err := tuneFigures(d)
	if err != nil {
		return nil, err
	}
	figs = append(figs, tf...)
	stems := histStems(d.Tensors)
	for i := range d.Tensors {
		f, err := histFigure(&d.Tensors[i], stems[i])
		if err != nil {
			return nil, err
		}
		if f != nil {
			figs = append(figs, f)
		}
	}
	return figs, nil
}

// maxStem keeps file names well under the 255-byte limit of common file
// systems, with room for a suffix and the extension.
const maxStem = 96

// histStems names each tensor's histogram figure "hist-" plus the tensor
// name with every character outside [A-Za-z0-9._-] replaced by '_'. Names
// stay unique even on case-insensitive file systems: a clash gets "-2",
// "-3", ... in tensor order.
func histStems(ts []TensorStats) []string {
	out := make([]string, len(ts))
	taken := make(map[string]bool, len(ts))
	for i, t := range ts {
		base := "hist-" + safeName(t.Name)
		stem := base
		for n := 2; taken[strings.ToLower(stem)]; n++ {
			stem = base + "-" + strconv.Itoa(n)
		}
		taken[strings.ToLower(stem)] = true
		out[i] = stem
	}
	return out
}

func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
	// No hidden files, no "." or "..".
	s = strings.TrimLeft(s, "._-")
	if len(s) > maxStem {
		s = s[len(s)-maxStem:] // the end of an ONNX name says the most
	}
	if s == "" {
		s = "tensor"
	}
	return s
}
