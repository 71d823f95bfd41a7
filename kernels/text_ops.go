package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/onnxq/onnxq/graph"
)

// Text ops of exported scikit-learn pipelines: StringNormalizer and
// TfIdfVectorizer.

func init() {
	Register("", "StringNormalizer", 10, newStringNormalizer)
	Register("", "TfIdfVectorizer", 9, newTfIdfVectorizer)
}

// textCase is the case mapping of a locale. Go maps case rune by rune with
// Unicode's default rules, which is what a per-character locale facet does for
// every language but Turkish and Azeri, whose dotted and dotless i differ.
type textCase struct{ special unicode.SpecialCase }

var localeName = regexp.MustCompile(`^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*(\.[A-Za-z0-9_-]+)?(@[A-Za-z0-9_-]+)?$`)

func caseOf(locale string) (textCase, error) {
	switch locale {
	case "", "C", "POSIX", "C.UTF-8", "C.utf8":
		return textCase{}, nil
	}
	if !localeName.MatchString(locale) {
		return textCase{}, fmt.Errorf("StringNormalizer locale %q is not a locale name such as en_US", locale)
	}
	lang := strings.ToLower(strings.FieldsFunc(locale, func(r rune) bool { return strings.ContainsRune("_-.@", r) })[0])
	if lang == "tr" || lang == "az" {
		return textCase{unicode.TurkishCase}, nil
	}
	return textCase{}, nil
}

func (c textCase) lower(s string) string {
	if c.special != nil {
		return strings.ToLowerSpecial(c.special, s)
	}
	return strings.ToLower(s)
}

func (c textCase) upper(s string) string {
	if c.special != nil {
		return strings.ToUpperSpecial(c.special, s)
	}
	return strings.ToUpper(s)
}

// newStringNormalizer drops the elements that are stopwords, then changes the
// case of the rest. Its input is [C] or [1, C].
func newStringNormalizer(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	action := a.String("case_change_action", "NONE")
	sensitive := a.Int("is_case_sensitive", 0) != 0
	locale := a.String("locale", "")
	stopwords, err := ni.Node.AttrStrings("stopwords", nil)
	a.keep(err)
	if a.err != nil {
		return nil, a.err
	}
	switch action {
	case "LOWER", "UPPER", "NONE":
	default:
		return nil, fmt.Errorf("StringNormalizer case_change_action %q is not LOWER, UPPER or NONE", action)
	}
	// the locale matters only when case is changed or compared
	folds := len(stopwords) > 0 && !sensitive
	var tc textCase
	if action != "NONE" || folds {
		if tc, err = caseOf(locale); err != nil {
			return nil, err
		}
	}
	stops := map[string]bool{}
	for _, w := range stopwords {
		if folds {
			w = tc.lower(w)
		}
		stops[w] = true
	}
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, fmt.Errorf("StringNormalizer: %v", err)
		}
		x := in[0]
		if x.DType != graph.String {
			return nil, fmt.Errorf("StringNormalizer input must be string, got %s", x.DType.Short())
		}
		if !(x.Rank() == 1 || x.Rank() == 2 && x.Shape[0] == 1) {
			return nil, fmt.Errorf("StringNormalizer input must be [C] or [1, C], got shape %v", x.Shape)
		}
		var kept [][]byte
		for i, b := range graph.Elems[[]byte](x) {
			if (folds || action != "NONE") && !utf8.Valid(b) {
				return nil, fmt.Errorf("StringNormalizer input %d is not valid UTF-8", i)
			}
			s := string(b)
			key := s
			if folds {
				key = tc.lower(s)
			}
			if stops[key] {
				continue
			}
			switch action {
			case "LOWER":
				s = tc.lower(s)
			case "UPPER":
				s = tc.upper(s)
			}
			kept = append(kept, []byte(s))
		}
		if len(kept) == 0 {
			kept = [][]byte{{}} // all dropped: one empty string
		}
		shape := []int{len(kept)}
		if x.Rank() == 2 {
			shape = []int{1, len(kept)}
		}
		out, err := graph.TensorOf(graph.String, shape, kept)
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

const (
	tfidfTF = iota
	tfidfIDF
	tfidfTFIDF
)

// tfidf is a compiled TfIdfVectorizer: the pool's n-grams of the lengths
// counted, keyed by their tokens, each with its index i into ngram_indexes
// and weights.
type tfidf struct {
	minN, maxN, maxSkip int
	mode                int
	indexes             []int
	weights             []float32
	width               int               // output columns: max(ngram_indexes) + 1
	grams               map[string]int    // n-gram key -> pool n-gram index i
	tokens              map[string]uint64 // pool_strings token -> id; nil for pool_int64s
}

// gramKey appends a token to an n-gram key.
func gramKey(key []byte, tok uint64) []byte { return binary.LittleEndian.AppendUint64(key, tok) }

func newTfIdfVectorizer(ni *NodeInfo) (Kernel, error) {
	nd := ni.Node
	for _, name := range []string{"max_gram_length", "min_gram_length", "max_skip_count", "mode", "ngram_counts", "ngram_indexes"} {
		if !nd.HasAttr(name) {
			return nil, fmt.Errorf("TfIdfVectorizer needs attribute %s", name)
		}
	}
	a := attrsOf(nd)
	tf := &tfidf{
		minN:    int(a.Int("min_gram_length", 0)),
		maxN:    int(a.Int("max_gram_length", 0)),
		maxSkip: int(a.Int("max_skip_count", 0)),
		indexes: toInts(a.Ints("ngram_indexes", nil)),
		weights: a.Floats("weights", nil),
	}
	mode := a.String("mode", "")
	counts := toInts(a.Ints("ngram_counts", nil))
	poolInts := a.Ints("pool_int64s", nil)
	poolStrs, err := nd.AttrStrings("pool_strings", nil)
	a.keep(err)
	if a.err != nil {
		return nil, a.err
	}
	switch mode {
	case "TF":
		tf.mode = tfidfTF
	case "IDF":
		tf.mode = tfidfIDF
	case "TFIDF":
		tf.mode = tfidfTFIDF
	default:
		return nil, fmt.Errorf("TfIdfVectorizer mode %q is not TF, IDF or TFIDF", mode)
	}
	tf.maxSkip = min(tf.maxSkip, math.MaxInt32) // no row is longer; keeps maxSkip+1 from overflowing
	if tf.minN < 1 || tf.maxN < tf.minN || tf.maxSkip < 0 {
		return nil, fmt.Errorf("TfIdfVectorizer needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got %d, %d, %d", tf.minN, tf.maxN, tf.maxSkip)
	}

	// one pool of tokens; strings become ids so both kinds key alike
	var pool []uint64
	switch {
	case len(poolInts) > 0 && len(poolStrs) > 0:
		return nil, fmt.Errorf("TfIdfVectorizer sets both pool_int64s and pool_strings")
	case len(poolInts) > 0:
		for _, v := range poolInts {
			pool = append(pool, uint64(v))
		}
	case len(poolStrs) > 0:
		tf.tokens = map[string]uint64{}
		for _, s := range poolStrs {
			id, ok := tf.tokens[s]
			if !ok {
				id = uint64(len(tf.tokens))
				tf.tokens[s] = id
			}
			pool = append(pool, id)
		}
	default:
		return nil, fmt.Errorf("TfIdfVectorizer needs pool_int64s or pool_strings")
	}

	// ngram_counts[k] is where the (k+1)-grams start in the pool; the n-grams
	// are numbered in pool order across all lengths, counted or not.
	tf.grams = map[string]int{}
	id := 0
	for k, start := range counts {
		end := len(pool)
		if k+1 < len(counts) {
			end = counts[k+1]
		}
		n := k + 1
		if start < 0 || start > end || end > len(pool) || k == 0 && start != 0 {
			return nil, fmt.Errorf("TfIdfVectorizer ngram_counts %v must rise from 0 within the pool of %d", counts, len(pool))
		}
		if (end-start)%n != 0 {
			return nil, fmt.Errorf("TfIdfVectorizer pool items %d..%d are not whole %d-grams", start, end, n)
		}
		for p := start; p < end; p += n {
			if n >= tf.minN && n <= tf.maxN {
				var key []byte
				for _, tok := range pool[p : p+n] {
					key = gramKey(key, tok)
				}
				tf.grams[string(key)] = id // a repeated n-gram: the last one counts
			}
			id++
		}
	}
	if id != len(tf.indexes) {
		return nil, fmt.Errorf("TfIdfVectorizer pool holds %d n-grams, ngram_indexes has %d", id, len(tf.indexes))
	}
	if len(tf.weights) > 0 && len(tf.weights) != len(tf.indexes) {
		return nil, fmt.Errorf("TfIdfVectorizer has %d weights for %d n-grams", len(tf.weights), len(tf.indexes))
	}
	for _, ix := range tf.indexes {
		if ix < 0 {
			return nil, fmt.Errorf("TfIdfVectorizer ngram_indexes has negative index %d", ix)
		}
		tf.width = max(tf.width, ix+1)
	}
	if tf.width == 0 {
		return nil, fmt.Errorf("TfIdfVectorizer ngram_indexes is empty")
	}
	return KernelFunc(tf.run), nil
}

func (tf *tfidf) run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, fmt.Errorf("TfIdfVectorizer: %v", err)
	}
	x := in[0]
	if isStr := x.DType == graph.String; isStr != (tf.tokens != nil) {
		pool := "pool_int64s"
		if isStr {
			pool = "pool_strings"
		}
		return nil, fmt.Errorf("TfIdfVectorizer input of %s needs %s", x.DType.Short(), pool)
	}
	toks := make([]uint64, x.Len())
	switch d := x.Data().(type) {
	case []int64:
		for i, v := range d {
			toks[i] = uint64(v)
		}
	case []int32:
		for i, v := range d {
			toks[i] = uint64(int64(v))
		}
	case [][]byte:
		for i, s := range d {
			id, ok := tf.tokens[string(s)]
			if !ok {
				id = ^uint64(0) // in no n-gram: the pool's ids count up from 0
			}
			toks[i] = id
		}
	default:
		return nil, fmt.Errorf("TfIdfVectorizer input must be int32, int64 or string, got %s", x.DType.Short())
	}
	var rows, c int
	var shape []int
	switch x.Rank() {
	case 1:
		rows, c, shape = 1, x.Shape[0], []int{tf.width}
	case 2:
		rows, c, shape = x.Shape[0], x.Shape[1], []int{x.Shape[0], tf.width}
	default:
		return nil, fmt.Errorf("TfIdfVectorizer input must be [C] or [N, C], got shape %v", x.Shape)
	}
	out := ctx.New(graph.Float, shape)
	od := out.Float32s()
	counts := make([]int, len(tf.indexes))
	var key []byte
	for r := 0; r < rows; r++ {
		clear(counts)
		tf.count(toks[r*c:(r+1)*c], counts, key)
		y := od[r*tf.width : (r+1)*tf.width]
		for i, n := range counts {
			if n == 0 {
				continue
			}
			w := float32(1)
			if len(tf.weights) > 0 {
				w = tf.weights[i] // the weight of the i-th pool n-gram
			}
			switch tf.mode {
			case tfidfTF:
				y[tf.indexes[i]] += float32(n)
			case tfidfIDF:
				y[tf.indexes[i]] += w // counts truncated to 1
			case tfidfTFIDF:
				y[tf.indexes[i]] += w * float32(n)
			}
		}
	}
	return one(out), nil
}

// count adds to counts[i] every time the i-th pool n-gram occurs in row.
// Skip distance s (1 to max_skip_count+1) takes tokens s apart; unigrams do
// not depend on s, so they are counted at s = 1 only.
func (tf *tfidf) count(row []uint64, counts []int, key []byte) {
	for s := 1; s <= tf.maxSkip+1; s++ {
		least := tf.minN
		if s > 1 {
			least = max(least, 2)
		}
		if least > tf.maxN || (least-1)*s >= len(row) {
			break // no n-gram this long fits at this or any larger distance
		}
		for start := range row {
			key = key[:0]
			for n, p := 1, start; n <= tf.maxN && p < len(row); n, p = n+1, p+s {
				key = gramKey(key, row[p])
				if n < least {
					continue
				}
				if i, ok := tf.grams[string(key)]; ok {
					counts[i]++
				}
			}
		}
	}
}
