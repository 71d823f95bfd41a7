package overrides

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps every key path of a TOML document to the line it is set on,
// so errors found after decoding can still point into the file.
type keyLines map[string]int

func joinKey(segs []string) string { return strings.Join(segs, "\x00") }

// find returns the line of the longest prefix of segs the document sets.
func (k keyLines) find(segs []string) int {
	for n := len(segs); n > 0; n-- {
		if line, ok := k[joinKey(segs[:n])]; ok {
			return line
		}
	}
	return 0
}

// indexKeys walks the document's expressions: table headers set the prefix,
// key/values (and inline tables inside them) record their keys.
func indexKeys(doc []byte) (keyLines, error) {
	out := keyLines{}
	var p unstable.Parser
	p.Reset(doc)
	var prefix []string
	keyOf := func(n *unstable.Node) ([]string, int) {
		var segs []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if line == 0 {
				line = p.Shape(k.Raw).Start.Line
			}
			segs = append(segs, string(k.Data))
		}
		return segs, line
	}
	var walk func(base []string, kv *unstable.Node)
	walk = func(base []string, kv *unstable.Node) {
		segs, line := keyOf(kv)
		full := append(append([]string(nil), base...), segs...)
		for i := range full[len(base):] { // dotted keys define their parents here too
			if _, ok := out[joinKey(full[:len(base)+i+1])]; !ok {
				out[joinKey(full[:len(base)+i+1])] = line
			}
		}
		if v := kv.Value(); v != nil && v.Kind == unstable.InlineTable {
			it := v.Children()
			for it.Next() {
				walk(full, it.Node())
			}
		}
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			segs, line := keyOf(e)
			prefix = segs
			if _, ok := out[joinKey(segs)]; !ok {
				out[joinKey(segs)] = line
			}
		case unstable.KeyValue:
			walk(prefix, e)
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if pErr, ok := err.(*unstable.ParserError); ok {
			pe = pErr
			line := p.Shape(p.Range(pe.Highlight)).Start.Line
			return nil, &lineError{line, pe.Message}
		}
		return nil, err
	}
	return out, nil
}

type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

// keyString writes key segments as a TOML dotted key, quoting where needed.
func keyString(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		bare := s != ""
		for _, r := range s {
			if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				bare = false
			}
		}
		if bare {
			out[i] = s
		} else {
			out[i] = strconv.Quote(s)
		}
	}
	return strings.Join(out, ".")
}
