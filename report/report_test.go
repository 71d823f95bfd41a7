package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func render(t *testing.T, d *Data) string {
	t.Helper()
	b, err := renderHTML(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the HTML of the section with the given id.
func section(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `<section id="`+id+`">`)
	if i < 0 {
		t.Fatalf("no section %q", id)
	}
	j := strings.Index(page[i:], "</section>")
	return page[i : i+j]
}

var cellRE = regexp.MustCompile(`<td[^>]*>(.*?)</td>`)

// rows returns the data rows of the first table in s, as cell texts.
func rows(s string) [][]string {
	var out [][]string
	for _, tr := range strings.Split(s, "<tr")[1:] {
		var cells []string
		for _, m := range cellRE.FindAllStringSubmatch(tr, -1) {
			cells = append(cells, m[1])
		}
		if len(cells) > 0 {
			out = append(out, cells)
		}
	}
	return out
}

func TestHTMLSectionsAndNumbers(t *testing.T) {
	d := synthData(60)
	page := render(t, d)

	for _, id := range []string{"summary", "outputs", "layers", "worst", "sensitivity", "tune", "tensors", "histograms"} {
		section(t, page, id)
	}
	if !strings.Contains(page, "<title>onnxq compare: det.onnx vs det.qdq.onnx</title>") {
		t.Error("page title missing")
	}

	// Outputs: every number, and the output under the thresholds marked.
	out := section(t, page, "outputs")
	for _, want := range []string{
		`<tr class="bad"><td class="name">sigmoid_0.tmp_0</td><td>0.987120</td><td>16.94</td><td>0.0021</td><td>0.41</td><td>–</td></tr>`,
		`<tr><td class="name">cls_scores</td><td>0.999510</td><td>30.10</td><td>4.2e-06</td><td>0.012</td><td>96.88%</td></tr>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("outputs table lacks row %s", want)
		}
	}

	// Summary: the first bad tensor with its metrics and the count of
	// tensors under a threshold, counted here independently.
	under := 0
	for _, m := range d.Layers {
		if m.Cosine < 0.99 || m.SQNR < 20 || m.ChannelSQNR != nil && *m.ChannelSQNR < 20 {
			under++
		}
	}
	sum := section(t, page, "summary")
	if want := fmt.Sprintf("%d (%d under a threshold)", len(d.Layers), under); !strings.Contains(sum, want) {
		t.Errorf("summary lacks %q", want)
	}
	bad := d.Layers[slices.IndexFunc(d.Layers, func(m Metric) bool { return m.Name == d.FirstBad })]
	if want := fmt.Sprintf("<b>%s</b> (position %d, Conv: cosine %.6f, SQNR 11.50 dB, channel median 6.25 dB)", d.FirstBad, bad.Index, bad.Cosine); !strings.Contains(sum, want) {
		t.Errorf("summary lacks %q", want)
	}
	if !strings.Contains(sum, "run `onnxq compare --layerwise` to find the cause") || !strings.Contains(sum, "float 1.84 s") {
		t.Error("summary lacks the warnings or notes")
	}

	// Worst tensors: the 20 lowest SQNR (the channel median where lower),
	// lowest first, the planted layer on top; +Inf never among them.
	worst := rows(section(t, page, "worst"))
	if len(worst) != worstRows {
		t.Fatalf("worst table has %d rows, want %d", len(worst), worstRows)
	}
	low := func(m Metric) float64 {
		if m.ChannelSQNR != nil {
			return min(m.SQNR, *m.ChannelSQNR)
		}
		return m.SQNR
	}
	sorted := slices.Clone(d.Layers)
	slices.SortStableFunc(sorted, func(a, b Metric) int { return cmpFloat(low(a), low(b)) })
	channels := 0
	for i, r := range worst {
		ch := "–"
		if c := sorted[i].ChannelSQNR; c != nil {
			ch = fmt.Sprintf("%.2f", *c)
			channels++
		}
		if r[1] != sorted[i].Name || r[5] != fmt.Sprintf("%.2f", sorted[i].SQNR) || r[6] != ch {
			t.Errorf("worst row %d: %s %s %s, want %s %.2f %s", i, r[1], r[5], r[6], sorted[i].Name, sorted[i].SQNR, ch)
		}
	}
	if worst[0][1] != d.FirstBad || worst[0][5] != "11.50" || worst[0][6] != "6.25" {
		t.Errorf("worst tensor %v, want the planted %s at 11.50 dB, channels 6.25 dB", worst[0][:7], d.FirstBad)
	}
	if strings.Contains(section(t, page, "worst"), ">note<") {
		t.Error("a note column without notes")
	}
	d.Layers[bad.Index].Note = "one channel holds the range"
	if w := rows(section(t, render(t, d), "worst")); w[0][10] != "one channel holds the range" {
		t.Errorf("worst tensor's note %q", w[0][10])
	}
	if channels == 0 || channels == worstRows {
		t.Errorf("%d of the worst tensors have a channel SQNR: the order by the lower of both is not tested", channels)
	}

	// Sensitivity by rank, tune points by raised count, all tensors.
	sens := rows(section(t, page, "sensitivity"))
	if len(sens) != len(d.Sensitivity) || sens[0][0] != "1" || sens[0][1] != d.Sensitivity[0].Node {
		t.Errorf("sensitivity table: %d rows, first %v", len(sens), sens[0][:2])
	}
	if want := fmt.Sprintf("%.2f", d.Sensitivity[3].WeightSQNR); sens[3][7] != want {
		t.Errorf("sensitivity row 4 weight SQNR %s, want %s", sens[3][7], want)
	}
	// Tune steps in search order, the result marked.
	tune := section(t, page, "tune")
	tr := rows(tune)
	if len(tr) != len(d.Tune) || !slices.Equal(tr[7][:7], []string{"grow", "7", "cosine", "0.9993", "meets", "4.07", "85.30%"}) ||
		!slices.Equal(tr[8][:5], []string{"prune", "1", "cosine", "0.9893", "misses"}) {
		t.Errorf("tune table: %d rows, %v, %v", len(tr), tr[7], tr[8])
	}
	if !strings.Contains(tune, `<tr class="chosen"><td>grow</td><td>1</td>`) || strings.Count(tune, `class="chosen"`) != 1 {
		t.Error("the chosen tune step is not marked once")
	}
	stats := rows(section(t, page, "tensors"))
	if len(stats) != len(d.Tensors) {
		t.Fatalf("tensor table has %d rows, want %d", len(stats), len(d.Tensors))
	}
	ts := d.Tensors[bad.Index]
	want := []string{ts.Name, "activation", "uint8 (8 bit)", num(ts.Scale), strconv.FormatInt(ts.ZeroPoint, 10), "percentile",
		"[" + num(ts.QuantLo) + ", " + num(ts.QuantHi) + "]", pct(ts.ClipRate), fmt.Sprintf("%.6f", ts.Cosine),
		num(ts.Float.Min) + " / " + num(ts.Float.Median) + " / " + num(ts.Float.Max), num(ts.Float.Mean),
		num(ts.Dequant.Min) + " / " + num(ts.Dequant.Median) + " / " + num(ts.Dequant.Max), num(ts.Dequant.Mean),
		pct(ts.Float.ZeroShare) + " / " + pct(ts.Dequant.ZeroShare)}
	if !slices.Equal(stats[bad.Index], want) {
		t.Errorf("statistics of the planted tensor:\n%q\nwant\n%q", stats[bad.Index], want)
	}

	// Figures: two depth curves, sensitivity, three tune curves, one
	// histogram per tensor; the curve's caption names the marked tensor.
	if got, want := strings.Count(page, "<svg"), 2+1+3+len(d.Tensors); got != want {
		t.Errorf("%d <svg> figures, want %d", got, want)
	}
	if want := fmt.Sprintf("first under threshold: %s (position %d)", d.FirstBad, bad.Index); !strings.Contains(section(t, page, "layers"), want) {
		t.Errorf("depth figure caption lacks %q", want)
	}
	hist := section(t, page, "histograms")
	if got := strings.Count(hist, "<svg"); got != len(d.Tensors) {
		t.Errorf("%d histograms, want %d", got, len(d.Tensors))
	}
	// Highest clip rate first: the planted tensor's 1000x channel is
	// clipped, and its figure title says by how much.
	top := slices.Clone(d.Tensors)
	slices.SortStableFunc(top, func(a, b TensorStats) int { return cmpFloat(b.ClipRate, a.ClipRate) })
	first := regexp.MustCompile(`<figure id="fig-(hist-[^"]*)"`).FindStringSubmatch(hist)
	if first == nil || first[1] != "hist-"+safeName(top[0].Name) {
		t.Errorf("first histogram %v, want %s", first, top[0].Name)
	}
	if want := shorten(top[0].Name, 44) + ": clip " + pct(top[0].ClipRate); !strings.Contains(hist, want) {
		t.Errorf("histograms lack the title %q", want)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// The page fetches nothing: no URLs but the SVG namespaces and links to
// its own sections, no scripts, no CSS imports.
func TestHTMLSelfContained(t *testing.T) {
	page := render(t, synthData(30))
	rest := strings.NewReplacer(`xmlns="http://www.w3.org/2000/svg"`, "", `xmlns:xlink="http://www.w3.org/1999/xlink"`, "").Replace(page)
	for _, id := range []string{"outputs", "layers", "worst", "sensitivity", "tune", "tensors", "histograms"} {
		link := `<a href="#` + id + `">`
		if !strings.Contains(rest, link) {
			t.Errorf("no link to section %s", id)
		}
		rest = strings.ReplaceAll(rest, link, "")
	}
	for _, bad := range []string{"http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link", "<iframe", "<object"} {
		if strings.Contains(rest, bad) {
			i := strings.Index(rest, bad)
			t.Errorf("page contains %q: ...%s...", bad, rest[max(0, i-60):min(len(rest), i+60)])
		}
	}
}

func TestHTMLEscapesNames(t *testing.T) {
	evil := `x<script>alert(1)</script>"&`
	d := &Data{Title: evil, Notes: []string{evil}, Warnings: []string{evil},
		Outputs:  []Metric{{Name: evil, Cosine: 1, SQNR: 40}},
		Layers:   []Metric{{Index: 0, Name: evil, Cosine: 1, SQNR: 40}},
		FirstBad: evil,
		Tensors:  []TensorStats{{Name: evil, QuantLo: 0, QuantHi: 1, Hist: &Hist{Lo: 0, Hi: 1, Counts: []float64{1, 2}}}},
	}
	page := render(t, d)
	if strings.Contains(page, "<script") {
		t.Error("a tensor name reached the page unescaped")
	}
	if !strings.Contains(page, "x&lt;script&gt;alert(1)&lt;/script&gt;&#34;&amp;") {
		t.Error("escaped name missing")
	}
}

func TestHTMLLeavesOutEmptySections(t *testing.T) {
	page := render(t, &Data{Outputs: []Metric{{Name: "y", Cosine: 0.999, SQNR: 31}}})
	section(t, page, "outputs")
	for _, id := range []string{"layers", "worst", "sensitivity", "tune", "tensors", "histograms"} {
		if strings.Contains(page, `<section id="`+id+`"`) {
			t.Errorf("empty data gave a %q section", id)
		}
	}
	if strings.Contains(page, "<svg") || !strings.Contains(page, "<title>onnxq report</title>") {
		t.Error("page without layers has figures or no default title")
	}
	if _, err := renderHTML(&Data{}); err != nil {
		t.Errorf("empty data: %v", err)
	}
}

// Non-finite and degenerate values draw without NaN coordinates and
// without a panic.
func TestDegenerateValues(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	d := &Data{
		Thresholds: Thresholds{Cos: nan, SQNR: inf},
		Layers: []Metric{
			{Index: 0, Name: "a", Cosine: 1, SQNR: inf},
			{Index: 1, Name: "b", Cosine: nan, SQNR: nan},
			{Index: 2, Name: "c", Cosine: -0.2, SQNR: math.Inf(-1)},
			{Index: 3, Name: "d", Cosine: 0.5, SQNR: 3},
		},
		FirstBad: "c", WorstContributor: "missing",
		Tensors: []TensorStats{
			{Name: "zeros", Hist: &Hist{Lo: -1, Hi: 1, Counts: make([]float64, 10)}, QuantLo: -1, QuantHi: 1},
			{Name: "constant", Hist: &Hist{Lo: 2, Hi: 2, Counts: []float64{7}}, QuantLo: nan, QuantHi: nan},
			{Name: "reversed", Hist: &Hist{Lo: 1, Hi: -1, Counts: []float64{1}}},
			{Name: "inf", Hist: &Hist{Lo: math.Inf(-1), Hi: 1, Counts: []float64{1}}},
			{Name: "negative", Hist: &Hist{Lo: 0, Hi: 1, Counts: []float64{-3, nan, 4}}, QuantLo: 0.5, QuantHi: 0.5},
			{Name: "nohist"},
		},
		Sensitivity: []SensitivityRow{{Rank: 2, Node: "n2", SQNR: inf, WeightSQNR: nan, ActSQNR: 4}, {Rank: 1, Node: "n1", SQNR: 7, WeightSQNR: nan, ActSQNR: 5}},
		Tune:        []TunePoint{{Raised: 0, Metric: nan}, {Raised: 1, Metric: 0.9}},
		TuneTarget:  nan,
	}
	page := render(t, d)
	for _, svg := range regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1) {
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Fatalf("figure with a non-finite coordinate:\n%.600s", svg)
		}
	}
	// zeros, constant, negative have a usable histogram; reversed and inf not.
	if got := strings.Count(section(t, page, "histograms"), "<svg"); got != 3 {
		t.Errorf("%d histograms, want 3", got)
	}
	if !strings.Contains(page, "3 tensors have no histogram") {
		t.Error("the page does not say how many tensors have no histogram")
	}
	if err := WritePlots(t.TempDir(), d); err != nil {
		t.Fatal(err)
	}
}

// The histogram figure marks the clipping range: dashed lines at QuantLo
// and QuantHi and a shade over what lies outside, checked on the pixels of
// the PNG where the plot's own axis transform puts them.
func TestHistogramMarksClipRange(t *testing.T) {
	counts := make([]float64, 400)
	for i := range counts {
		counts[i] = float64(1 + (i*37)%50)
	}
	ts := TensorStats{Name: "conv1/out:0", ClipRate: 0.0312, QuantLo: -0.5, QuantHi: 2, Hist: &Hist{Lo: -1, Hi: 3, Counts: counts}}
	f, err := histFigure(&ts, "hist-conv1_out_0")
	if err != nil {
		t.Fatal(err)
	}
	if f.p.Title.Text != "conv1/out:0: clip 3.12%" {
		t.Errorf("title %q", f.p.Title.Text)
	}
	var b bytes.Buffer
	if err := f.render(&b, "png"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	dc := f.p.DataCanvas(draw.New(vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(pngDPI))))
	trX, _ := f.p.Transforms(&dc)
	h := img.Bounds().Dy()
	col := func(x float64) int { return int(trX(x).Dots(pngDPI)) }
	left, right := int(dc.Min.X.Dots(pngDPI)), int(dc.Max.X.Dots(pngDPI))
	top, bottom := h-int(dc.Max.Y.Dots(pngDPI)), h-int(dc.Min.Y.Dots(pngDPI))
	lo, hi := col(-0.5), col(2)
	if !(left+5 < lo && lo+20 < hi && hi+5 < right) {
		t.Fatalf("data area %d..%d, range columns %d..%d", left, right, lo, hi)
	}

	shade := color.RGBA{255, 203, 203, 255} // clipShade over white
	row := top + 3                          // above the tallest bar
	for _, c := range []struct {
		x    int
		want color.RGBA
		what string
	}{
		{(left + lo) / 2, shade, "below the range"},
		{(hi + right) / 2, shade, "above the range"},
		{(lo + hi) / 2, color.RGBA{255, 255, 255, 255}, "inside the range"},
	} {
		if got := rgba(img.At(c.x, row)); !colorNear(got, c.want, 8) {
			t.Errorf("%s (column %d) the background is %v, want %v", c.what, c.x, got, c.want)
		}
	}
	redRows := func(x int) (n int) {
		for dx := -1; dx <= 1; dx++ {
			k := 0
			for y := top; y < bottom; y++ {
				if colorNear(rgba(img.At(x+dx, y)), color.RGBA{214, 39, 40, 255}, 40) {
					k++
				}
			}
			n = max(n, k)
		}
		return n
	}
	for _, x := range []int{lo, hi} {
		if n := redRows(x); n < (bottom-top)/4 {
			t.Errorf("column %d: %d red pixels of %d, want a dashed line", x, n, bottom-top)
		}
	}
	if n := redRows((lo + hi) / 2); n != 0 {
		t.Errorf("red pixels away from the range edges: %d", n)
	}

	// A range wider than the data widens the axis to show it.
	ts.QuantLo, ts.QuantHi = -4, 4
	f, _ = histFigure(&ts, "x")
	if f.p.X.Min > -4 || f.p.X.Max < 4 {
		t.Errorf("x axis %g..%g does not show the range [-4, 4]", f.p.X.Min, f.p.X.Max)
	}
}

func rgba(c color.Color) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func colorNear(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

func TestWritePlots(t *testing.T) {
	d := synthData(12)
	for _, name := range []string{"a/b:c", "A/B:C", "../../escape", ""} {
		ts := d.Tensors[0]
		ts.Name = name
		d.Tensors = append(d.Tensors, ts)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "plots", "new")
	if err := WritePlots(dir, d); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, want := range []string{"layers-sqnr.png", "layers-cosine.png", "sensitivity.png", "tune-raised.png", "tune-size.png",
		"tune-int8-macs.png", "hist-a_b_c.png", "hist-A_B_C-2.png", "hist-escape.png", "hist-tensor.png"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	if len(names) != 6+len(d.Tensors) {
		t.Errorf("%d files, want %d", len(names), 6+len(d.Tensors))
	}
	if top, _ := os.ReadDir(parent); len(top) != 1 {
		t.Errorf("files outside the plots folder: %v", top)
	}
	first := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		first[n] = b
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		img, _ := png.Decode(bytes.NewReader(b))
		dark := 0
		for y := 0; y < cfg.Height; y += 2 {
			for x := 0; x < cfg.Width; x += 2 {
				if c := rgba(img.At(x, y)); int(c.R)+int(c.G)+int(c.B) < 300 {
					dark++
				}
			}
		}
		if dark < 100 {
			t.Errorf("%s: %d dark pixels, want axes and text", n, dark)
		}
		switch {
		case n == "layers-sqnr.png" && (cfg.Width != 864 || cfg.Height != 269):
			t.Errorf("%s is %dx%d, want 864x269 (9 x 2.8 in at 96 dpi)", n, cfg.Width, cfg.Height)
		case strings.HasPrefix(n, "hist-") && (cfg.Width != 346 || cfg.Height != 221):
			t.Errorf("%s is %dx%d, want 346x221 (3.6 x 2.3 in at 96 dpi)", n, cfg.Width, cfg.Height)
		}
	}
	// Again: the same bytes, and no temporary file left behind.
	if err := WritePlots(dir, d); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadDir(dir)
	if len(again) != len(names) {
		t.Errorf("second run left %d files, want %d", len(again), len(names))
	}
	for n, b := range first {
		if b2, _ := os.ReadFile(filepath.Join(dir, n)); !bytes.Equal(b, b2) {
			t.Errorf("%s differs between two runs", n)
		}
	}
}

func TestHistStems(t *testing.T) {
	ts := []TensorStats{{Name: "x"}, {Name: "X"}, {Name: "x"}, {Name: strings.Repeat("ab/", 100) + "end"}, {Name: "名前"}, {Name: ""}}
	got := histStems(ts)
	want := []string{"hist-x", "hist-X-2", "hist-x-3", "hist-" + (strings.Repeat("ab_", 100) + "end")[303-maxStem:], "hist-tensor", "hist-tensor-2"}
	if !slices.Equal(got, want) {
		t.Errorf("stems %q, want %q", got, want)
	}
}

func TestCSVParsesBack(t *testing.T) {
	d := synthData(10)
	d.Tensors[1].Float.Max = math.Inf(1)
	d.Tensors[2].Cosine = math.NaN()
	d.Layers[3].SQNR = math.Inf(1)

	var b bytes.Buffer
	if err := WriteTensorsCSV(&b, d.Tensors); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], TensorColumns) || len(recs) != len(d.Tensors)+1 {
		t.Fatalf("header %v, %d rows", recs[0], len(recs))
	}
	col := func(name string) int { return slices.Index(TensorColumns, name) }
	for i, ts := range d.Tensors {
		r := recs[i+1]
		for name, want := range map[string]float64{
			"float_min": ts.Float.Min, "float_q1": ts.Float.Q1, "float_median": ts.Float.Median, "float_q3": ts.Float.Q3,
			"float_max": ts.Float.Max, "float_mean": ts.Float.Mean, "float_variance": ts.Float.Variance, "float_zero_share": ts.Float.ZeroShare,
			"dequant_min": ts.Dequant.Min, "dequant_median": ts.Dequant.Median, "dequant_variance": ts.Dequant.Variance,
			"dequant_zero_share": ts.Dequant.ZeroShare, "clip_rate": ts.ClipRate, "cosine": ts.Cosine, "scale": ts.Scale,
			"quant_lo": ts.QuantLo, "quant_hi": ts.QuantHi,
		} {
			got, err := strconv.ParseFloat(r[col(name)], 64)
			if err != nil || !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
				t.Errorf("row %d %s = %q, want %v", i, name, r[col(name)], want)
			}
		}
		zp, _ := strconv.ParseInt(r[col("zero_point")], 10, 64)
		bits, _ := strconv.Atoi(r[col("bits")])
		if r[col("name")] != ts.Name || r[col("kind")] != ts.Kind || zp != ts.ZeroPoint || bits != ts.Bits ||
			r[col("dtype")] != ts.DType || r[col("observer")] != ts.Observer {
			t.Errorf("row %d: %v", i, r)
		}
	}

	b.Reset()
	if err := WriteLayersCSV(&b, d.Layers); err != nil {
		t.Fatal(err)
	}
	recs, _ = csv.NewReader(&b).ReadAll()
	for i, m := range d.Layers {
		r := recs[i+1]
		sq, _ := strconv.ParseFloat(r[5], 64)
		cos, _ := strconv.ParseFloat(r[4], 64)
		ch, err := strconv.ParseFloat(r[6], 64)
		if m.ChannelSQNR == nil && r[6] != "" || m.ChannelSQNR != nil && (err != nil || ch != *m.ChannelSQNR) {
			t.Errorf("layer row %d: channel SQNR %q", i, r[6])
		}
		if r[0] != strconv.Itoa(m.Index) || r[1] != m.Name || sq != m.SQNR || cos != m.Cosine || r[10] != strconv.FormatBool(m.Quantized) {
			t.Errorf("layer row %d: %v", i, r)
		}
	}

	b.Reset()
	rev := slices.Clone(d.Sensitivity)
	slices.Reverse(rev)
	if err := WriteSensitivityCSV(&b, rev); err != nil {
		t.Fatal(err)
	}
	recs, _ = csv.NewReader(&b).ReadAll()
	for i, s := range d.Sensitivity { // written by rank whatever the input order
		r := recs[i+1]
		w, _ := strconv.ParseFloat(r[7], 64)
		if r[0] != strconv.Itoa(s.Rank) || r[1] != s.Node || w != s.WeightSQNR {
			t.Errorf("sensitivity row %d: %v", i, r)
		}
	}

	b.Reset()
	if err := WriteTuneCSV(&b, d.Tune); err != nil {
		t.Fatal(err)
	}
	recs, _ = csv.NewReader(&b).ReadAll()
	for i, p := range d.Tune {
		r := recs[i+1]
		size, _ := strconv.ParseInt(r[6], 10, 64)
		m, _ := strconv.ParseFloat(r[3], 64)
		nodes := strings.Split(r[8], ";")
		if r[0] != p.Phase || r[1] != strconv.Itoa(p.Raised) || m != p.Metric || r[4] != strconv.FormatBool(p.Met) ||
			r[5] != strconv.FormatBool(p.Chosen) || size != p.SizeBytes || len(p.Nodes) > 0 && !slices.Equal(nodes, p.Nodes) {
			t.Errorf("tune row %d: %v", i, r)
		}
	}
}

func TestJSON(t *testing.T) {
	d := synthData(8)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, d); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var got struct {
		Title      string
		Thresholds struct{ Cos, SQNR float64 }
		FirstBad   string `json:"first_bad"`
		Layers     []map[string]any
		Outputs    []struct {
			Name string
			Top1 *float64
		}
		Tensors []struct {
			Name  string
			Float struct{ Median float64 }
			Hist  struct{ Counts []float64 }
		}
		Tune []struct{ Nodes []string }
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v\n%.300s", err, b)
	}
	if got.Title != d.Title || got.Thresholds.SQNR != 20 || got.FirstBad != d.FirstBad || len(got.Layers) != 8 {
		t.Errorf("decoded %+v", got)
	}
	if got.Layers[5]["sqnr"] != "inf" || got.Layers[4]["sqnr"] != d.Layers[4].SQNR || got.Layers[4]["name"] != d.Layers[4].Name {
		t.Errorf("layers[5] %v, layers[4] %v", got.Layers[5], got.Layers[4])
	}
	if got.Outputs[1].Top1 == nil || *got.Outputs[1].Top1 != 0.96875 || got.Outputs[0].Top1 != nil {
		t.Error("top-1 agreement lost")
	}
	if got.Tensors[3].Float.Median != d.Tensors[3].Float.Median || !slices.Equal(got.Tensors[3].Hist.Counts, d.Tensors[3].Hist.Counts) {
		t.Error("tensor statistics lost")
	}
	if !slices.Equal(got.Tune[3].Nodes, d.Tune[3].Nodes) {
		t.Error("tune nodes lost")
	}
	// The types marshal the same way inside other JSON.
	m, err := json.Marshal(map[string]any{"m": Metric{Name: "y", SQNR: math.Inf(1), Cosine: math.NaN()}})
	if err != nil || !strings.Contains(string(m), `"cosine":"nan","sqnr":"inf"`) {
		t.Errorf("json.Marshal(Metric) = %s, %v", m, err)
	}
}

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	var pages, jsons [2][]byte
	for i := range 2 {
		d := synthData(40) // built anew: nothing shared between the runs
		p, j := filepath.Join(dir, fmt.Sprint(i, ".html")), filepath.Join(dir, fmt.Sprint(i, ".json"))
		if err := WriteHTML(p, d); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(j, d); err != nil {
			t.Fatal(err)
		}
		pages[i], _ = os.ReadFile(p)
		jsons[i], _ = os.ReadFile(j)
	}
	if len(pages[0]) == 0 || !bytes.Equal(pages[0], pages[1]) {
		t.Error("two pages from the same data differ")
	}
	if len(jsons[0]) == 0 || !bytes.Equal(jsons[0], jsons[1]) {
		t.Error("two JSON reports from the same data differ")
	}
}

func TestBadPaths(t *testing.T) {
	d := synthData(6)
	dir := t.TempDir()
	if err := WriteHTML(filepath.Join(dir, "missing", "r.html"), d); err == nil || !strings.HasPrefix(err.Error(), "report: ") {
		t.Errorf("missing folder: %v", err)
	}
	if err := WriteJSON(filepath.Join(dir, "missing", "r.json"), d); err == nil {
		t.Error("missing folder: no error")
	}
	// The target is a folder: the rename fails and the temporary goes.
	target := filepath.Join(dir, "r.html")
	os.Mkdir(target, 0o755)
	if err := WriteHTML(target, d); err == nil {
		t.Error("folder as target: no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "r.html" || !entries[0].IsDir() {
		t.Errorf("left behind: %v", entries)
	}
	// A plots folder that is a file.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if err := WritePlots(file, d); err == nil {
		t.Error("plots into a file: no error")
	}
	if err := WriteHTML(filepath.Join(dir, "n.html"), nil); err == nil {
		t.Error("nil data: no error")
	}
}

// Thousands of tensors: the page keeps the histograms with the highest
// clip rates and says how many it left out.
func TestHTMLHistogramCap(t *testing.T) {
	d := &Data{}
	n := maxPageHistograms + 5
	for i := range n {
		d.Tensors = append(d.Tensors, TensorStats{Name: fmt.Sprintf("t%03d", i), ClipRate: float64(i) / 1000,
			QuantLo: 0, QuantHi: 1, Hist: &Hist{Lo: 0, Hi: 2, Counts: []float64{5, 1}}})
	}
	hist := section(t, render(t, d), "histograms")
	if got := strings.Count(hist, "<svg"); got != maxPageHistograms {
		t.Errorf("%d histograms on the page, want %d", got, maxPageHistograms)
	}
	if !strings.Contains(hist, "The 5 tensors with the lowest clip rates are left out") {
		t.Error("the page does not say that histograms were left out")
	}
	for i := range n {
		shown := strings.Contains(hist, fmt.Sprintf(`id="fig-hist-t%03d"`, i))
		if shown != (i >= 5) {
			t.Errorf("tensor t%03d (clip rate %g) shown: %v", i, d.Tensors[i].ClipRate, shown)
		}
	}
}

// About 300 tensors, as in a detector, make a page that opens quickly.
func TestHTMLSize(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 300 histograms")
	}
	page := render(t, synthData(300))
	t.Logf("300 tensors: %d bytes", len(page))
	if len(page) > 4<<20 {
		t.Errorf("page of %d bytes for 300 tensors, want under 4 MiB", len(page))
	}
}

// The cost of a report for a detector-sized model (300 tensors).
func BenchmarkWriteHTML300(b *testing.B) {
	d := synthData(300)
	path := filepath.Join(b.TempDir(), "r.html")
	for b.Loop() {
		if err := WriteHTML(path, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePlots300(b *testing.B) {
	d := synthData(300)
	dir := b.TempDir()
	for b.Loop() {
		if err := WritePlots(dir, d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	labels := func(tk niceTicks, lo, hi float64) (out []string) {
		for _, x := range tk.Ticks(lo, hi) {
			if x.Label != "" {
				out = append(out, x.Label)
			}
		}
		return out
	}
	for _, c := range []struct {
		tk     niceTicks
		lo, hi float64
		want   []string
	}{
		{niceTicks{integer: true}, 0, 299, []string{"0", "50", "100", "150", "200", "250"}},
		{niceTicks{integer: true}, 0, 3, []string{"0", "1", "2", "3"}},
		{niceTicks{}, 0.965, 1.001, []string{"0.97", "0.98", "0.99", "1"}},
		{niceTicks{}, -1.2, 3.1, []string{"-1", "0", "1", "2", "3"}},
		// Long labels on a small axis: fewer of them.
		{niceTicks{chars: smallAxisChars}, 18.7622, 18.7632, []string{"18.7625", "18.763"}},
		{niceTicks{}, 0, 10, []string{"0", "2", "4", "6", "8", "10"}},
		{niceTicks{}, 0.9875, 0.99975, []string{"0.9875", "0.99", "0.9925", "0.995", "0.9975"}},
	} {
		if got := labels(c.tk, c.lo, c.hi); !slices.Equal(got, c.want) {
			t.Errorf("%+v on [%g, %g]: %q, want %q", c.tk, c.lo, c.hi, got, c.want)
		}
	}
}
