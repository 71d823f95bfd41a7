// Package ppocr is PaddleOCR's post-processing for the examples that score
// its models against labels: greedy CTC decoding of the recognizer's scores
// into characters of its dictionary, the comparison of a reading with its
// label, and the direction classifier's decision.
package ppocr

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// GreedyCTC decodes a [1, T, C] (or [T, C]) score tensor: the best class
// per time step, repeats collapsed, the blank (class 0) dropped.
func GreedyCTC(t *graph.Tensor) ([]int, error) {
	sh := t.Shape
	if t.DType != graph.Float || !(len(sh) == 2 || len(sh) == 3 && sh[0] == 1) || sh[len(sh)-1] < 1 {
		return nil, fmt.Errorf("output is %s%v, not float32 [1,T,classes]", t.DType.Short(), sh)
	}
	c := sh[len(sh)-1]
	d := t.Float32s()
	var out []int
	prev := -1
	for s := 0; s+c <= len(d); s += c {
		best := 0
		for k := 1; k < c; k++ {
			if d[s+k] > d[s+best] {
				best = k
			}
		}
		if best != prev && best != 0 {
			out = append(out, best)
		}
		prev = best
	}
	return out, nil
}

// Dict maps the recognizer's classes to text: class 0 is the CTC blank,
// class i (1 <= i <= lines) the dictionary's line i, and the class after
// the last line a space (PaddleOCR's use_space_char).
type Dict []string

// LoadDict reads a PaddleOCR character dictionary (one character a line,
// such as ppocr_keys_v1.txt).
func LoadDict(path string) (Dict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("character dictionary: %w", err)
	}
	defer f.Close()
	d := Dict{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d = append(d, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("character dictionary %s: %w", path, err)
	}
	if len(d) == 1 {
		return nil, fmt.Errorf("character dictionary %s is empty", path)
	}
	return append(d, " "), nil
}

// Text spells decoded classes; a class the dictionary does not have is an
// error (the dictionary does not belong to the model).
func (d Dict) Text(classes []int) (string, error) {
	var b strings.Builder
	for _, c := range classes {
		if c < 0 || c >= len(d) {
			return "", fmt.Errorf("class %d is outside the dictionary's %d classes", c, len(d))
		}
		b.WriteString(d[c])
	}
	return b.String(), nil
}

// Normalize is the form in which a reading is compared with its label:
// without spaces (CTC readers merge and split them freely) and with
// full-width ASCII forms (U+FF01..U+FF5E, which the Chinese dictionary has
// for most punctuation) as their ASCII letters.
func Normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '\u3000':
			return -1
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		}
		return r
	}, s)
}

// Same tells whether a reading matches its label.
func Same(reading, label string) bool { return Normalize(reading) == Normalize(label) }

// ClsLabels are the direction classifier's classes in order.
var ClsLabels = []string{"0", "180"}

// ClsDecision is the class with the highest score in a [1, 2] output.
func ClsDecision(t *graph.Tensor) (string, error) {
	if t.DType != graph.Float || t.Len() != len(ClsLabels) {
		return "", fmt.Errorf("output is %s%v, not float32 [1,%d]", t.DType.Short(), t.Shape, len(ClsLabels))
	}
	d := t.Float32s()
	best := 0
	for k := range d {
		if d[k] > d[best] {
			best = k
		}
	}
	return ClsLabels[best], nil
}
