package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// figure is one plot with the size it is drawn at and the file stem it is
// saved under.
type figure struct {
	name    string // file stem, unique within a report
	caption string
	p       *plot.Plot
	// legend, when it has entries, is drawn in a strip right of the plot:
	// inside the data area it would hide data.
	legend *plot.Legend
	w, h   vg.Length
}

const (
	pngDPI = 96
	// maxHistBins caps the bars of a histogram figure: observers keep
	// thousands of bins, a 3-inch plot shows about a hundred.
	maxHistBins = 96
	// maxSensitivityBars caps the sensitivity chart; the table has all rows.
	maxSensitivityBars = 30
	// smallAxisChars is how many characters of tick labels fit along the
	// x axis of a 3.6-inch figure.
	smallAxisChars = 30
)

var (
	sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

	blue  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	green = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	grey  = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	red   = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	// clipShade marks the values the encoding clips; premultiplied alpha.
	clipShade = color.RGBA{R: 64, G: 12, B: 12, A: 64}
	orange    = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	purple    = color.RGBA{R: 148, G: 103, B: 189, A: 255}
	gridGrey  = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	dashed    = []vg.Length{vg.Points(4), vg.Points(3)}
)

// newPlot returns a plot with sans-serif text, round tick values, a light
// grid and the given title and axis labels.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 11)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10)
		a.Tick.Label.Font = font.From(sans, 9)
		a.Tick.Marker = niceTicks{}
	}
	g := plotter.NewGrid()
	g.Vertical.Color = gridGrey
	g.Horizontal.Color = gridGrey
	p.Add(g)
	return p
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 8)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(16)
	return &l
}

// niceTicks puts labelled ticks on round values (1, 2, 2.5 or 5 times a
// power of ten), about six, or fewer where the labels would not fit in
// chars characters together (0: 48), and unlabelled ones halfway; the
// library's default labels few ticks and prints "250.00" for 250.
type niceTicks struct {
	integer bool
	chars   int
}

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !finite(lo) || !finite(hi) || !(hi > lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	budget := t.chars
	if budget == 0 {
		budget = 48
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	var ticks []plot.Tick
	for _, m := range []float64{1, 2, 2.5, 5, 10, 20, 25, 50, 100} {
		step := m * mag
		if step < raw || t.integer && step != math.Round(step) {
			continue
		}
		ticks = t.at(lo, hi, step)
		chars := 0
		for _, tk := range ticks {
			chars += len(tk.Label) + 2
		}
		if chars <= budget {
			break
		}
	}
	if ticks == nil {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	return ticks
}

// at puts labelled ticks every step and unlabelled ones halfway.
func (t niceTicks) at(lo, hi, step float64) []plot.Tick {
	var ticks []plot.Tick
	halves := !t.integer || step >= 2
	first := math.Ceil(lo/step) * step
	if before := first - step/2; halves && before >= lo {
		ticks = append(ticks, plot.Tick{Value: before})
	}
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > hi+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v, step)})
		if half := v + step/2; halves && half <= hi {
			ticks = append(ticks, plot.Tick{Value: half})
		}
	}
	return ticks
}

// tickLabel prints v with as many decimals as step needs and no more:
// 18.76225 at a step of 0.00025, 5 (not 5.0) at a step of 2.5.
func tickLabel(v, step float64) string {
	if math.Abs(v) >= 1e6 || math.Abs(v) < 1e-4 && v != 0 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	d := 0
	for scaled := step; d < 12 && math.Abs(scaled-math.Round(scaled)) > 1e-6*scaled; d++ {
		scaled *= 10
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func lineStyle(c color.Color, width float64, dash bool) draw.LineStyle {
	s := draw.LineStyle{Color: c, Width: vg.Points(width)}
	if dash {
		s.Dashes = dashed
	}
	return s
}

// vline is a vertical line across the whole plot at x.
type vline struct {
	x     float64
	style draw.LineStyle
}

func (v vline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(v.x)
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// DataRange widens only the x axis: ±Inf leave the y range alone.
func (v vline) DataRange() (xmin, xmax, ymin, ymax float64) {
	return v.x, v.x, math.Inf(1), math.Inf(-1)
}

func (v vline) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(v.style, c.Min.X, y, c.Max.X, y)
}

// hline is a horizontal line across the whole plot at y.
type hline struct {
	y     float64
	style draw.LineStyle
}

func (h hline) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

func (h hline) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), h.y, h.y
}

func (h hline) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

// band shades the full height of the plot between x = lo and x = hi
// (either may be infinite).
type band struct {
	lo, hi float64
	fill   color.Color
}

func (b band) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	lo := max(trX(b.lo), c.Min.X)
	hi := min(trX(b.hi), c.Max.X)
	if !(hi > lo) {
		return
	}
	c.FillPolygon(b.fill, []vg.Point{{X: lo, Y: c.Min.Y}, {X: hi, Y: c.Min.Y}, {X: hi, Y: c.Max.Y}, {X: lo, Y: c.Max.Y}})
}

func (b band) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(b.fill, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// finiteRange returns the smallest and largest finite values of vs, and
// (NaN, NaN) when there is none.
func finiteRange(vs ...float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo > hi {
		return math.NaN(), math.NaN()
	}
	return lo, hi
}

// capper draws infinite values at the edge of the finite range, a little
// beyond the largest and smallest finite value.
type capper struct{ lo, hi float64 }

func newCapper(vs []float64, extra ...float64) capper {
	lo, hi := finiteRange(append(slices.Clone(vs), extra...)...)
	if math.IsNaN(lo) {
		return capper{-1, 1}
	}
	pad := 0.08 * (hi - lo)
	if pad == 0 {
		pad = max(math.Abs(hi)*0.08, 1)
	}
	return capper{lo - pad, hi + pad}
}

func (c capper) at(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return c.hi
	case math.IsInf(v, -1):
		return c.lo
	}
	return v
}

func countInf(vs []float64) int {
	n := 0
	for _, v := range vs {
		if math.IsInf(v, 0) {
			n++
		}
	}
	return n
}

// depthFigure draws one metric of every layer against its position in
// topological order, with the threshold and the first bad and worst
// contributing tensors marked.
// Where channel(m) reports a value, it is drawn as a second series.
func depthFigure(d *Data, name, title, ylabel, unit string, metric func(Metric) float64, threshold float64,
	channel func(Metric) (float64, bool)) (*figure, error) {
	ys := make([]float64, len(d.Layers))
	for i, m := range d.Layers {
		ys[i] = metric(m)
	}
	var extra []float64
	if threshold != 0 && finite(threshold) {
		extra = append(extra, threshold)
	}
	var chXYs plotter.XYs
	if channel != nil {
		for _, m := range d.Layers {
			if v, ok := channel(m); ok && !math.IsNaN(v) {
				chXYs = append(chXYs, plotter.XY{X: float64(m.Index), Y: v})
				extra = append(extra, v)
			}
		}
	}
	cp := newCapper(ys, extra...)
	p := newPlot(title, "position in topological order", ylabel)
	p.X.Tick.Marker = niceTicks{integer: true}
	lg := newLegend()

	// The curve breaks where a value is NaN (not measured).
	var seg plotter.XYs
	var quant, float plotter.XYs
	flush := func() error {
		if len(seg) == 0 {
			return nil
		}
		l, err := plotter.NewLine(seg)
		if err != nil {
			return err
		}
		l.LineStyle = lineStyle(blue, 1, false)
		p.Add(l)
		seg = nil
		return nil
	}
	for i, m := range d.Layers {
		if math.IsNaN(ys[i]) {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		pt := plotter.XY{X: float64(m.Index), Y: cp.at(ys[i])}
		seg = append(seg, pt)
		if m.Quantized {
			quant = append(quant, pt)
		} else {
			float = append(float, pt)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for _, set := range []struct {
		xys   plotter.XYs
		label string
		c     color.Color
		shape draw.GlyphDrawer
	}{
		{quant, "quantized", blue, draw.CircleGlyph{}},
		{float, "not quantized", grey, draw.RingGlyph{}},
	} {
		if len(set.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(set.xys)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: set.c, Radius: vg.Points(1.6), Shape: set.shape}
		p.Add(s)
		if len(quant) > 0 && len(float) > 0 {
			lg.Add(set.label, s)
		}
	}
	if len(chXYs) > 0 {
		for i := range chXYs {
			chXYs[i].Y = cp.at(chXYs[i].Y)
		}
		s, err := plotter.NewScatter(chXYs)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: green, Radius: vg.Points(1.8), Shape: draw.CrossGlyph{}}
		p.Add(s)
		lg.Add("median channel SQNR", s)
	}
	if threshold != 0 && finite(threshold) {
		t := hline{threshold, lineStyle(red, 1, true)}
		p.Add(t)
		lg.Add("threshold "+num(threshold)+unit, t)
	}
	caption := title
	for _, mark := range []struct {
		tensor, label string
		style         draw.LineStyle
	}{
		// Dashed over solid: both show when they are the same tensor.
		{d.FirstBad, "first under threshold", lineStyle(orange, 1.4, false)},
		{d.WorstContributor, "worst contributor", lineStyle(purple, 1.2, true)},
	} {
		if mark.tensor == "" {
			continue
		}
		if i := slices.IndexFunc(d.Layers, func(m Metric) bool { return m.Name == mark.tensor }); i >= 0 {
			v := vline{float64(d.Layers[i].Index), mark.style}
			p.Add(v)
			lg.Add(mark.label, v)
			caption += fmt.Sprintf("; %s: %s (position %d)", mark.label, mark.tensor, d.Layers[i].Index)
		}
	}
	if n := countInf(ys); n > 0 {
		caption += fmt.Sprintf(" (%d infinite values drawn at the edge of the axis)", n)
	}
	return &figure{name: name, caption: caption, p: p, legend: lg, w: 9 * vg.Inch, h: 2.8 * vg.Inch}, nil
}

func layerFigures(d *Data) ([]*figure, error) {
	if len(d.Layers) == 0 {
		return nil, nil
	}
	sq, err := depthFigure(d, "layers-sqnr", "SQNR per tensor over depth", "SQNR (dB)", " dB",
		func(m Metric) float64 { return m.SQNR }, d.Thresholds.SQNR,
		func(m Metric) (float64, bool) {
			if m.ChannelSQNR == nil {
				return 0, false
			}
			return *m.ChannelSQNR, true
		})
	if err != nil {
		return nil, err
	}
	cos, err := depthFigure(d, "layers-cosine", "Cosine similarity per tensor over depth", "cosine", "",
		func(m Metric) float64 { return m.Cosine }, d.Thresholds.Cos, nil)
	if err != nil {
		return nil, err
	}
	return []*figure{sq, cos}, nil
}

// sortedSensitivity returns the rows by rank (ties in input order).
func sortedSensitivity(rows []SensitivityRow) []SensitivityRow {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b SensitivityRow) int { return cmp.Compare(a.Rank, b.Rank) })
	return out
}

// sensitivityFigure draws the output SQNR of the top-ranked nodes as
// horizontal bars, rank 1 at the top, split into weight-only and
// activation-only effect where those were measured.
func sensitivityFigure(d *Data) (*figure, error) {
	if len(d.Sensitivity) == 0 {
		return nil, nil
	}
	rows := sortedSensitivity(d.Sensitivity)
	if len(rows) > maxSensitivityBars {
		rows = rows[:maxSensitivityBars]
	}
	n := len(rows)
	labels := make([]string, n)
	series := []struct {
		label string
		get   func(SensitivityRow) float64
		c     color.Color
	}{
		{"all tensors of the node", func(r SensitivityRow) float64 { return r.SQNR }, blue},
		{"weights only", func(r SensitivityRow) float64 { return r.WeightSQNR }, orange},
		{"activations only", func(r SensitivityRow) float64 { return r.ActSQNR }, green},
	}
	type shown struct {
		label string
		vals  []float64
		c     color.Color
	}
	var show []shown
	var all []float64
	for _, s := range series {
		vals := make([]float64, n)
		ok := true
		for i, r := range rows {
			vals[n-1-i] = s.get(r) // rank 1 at the top
			ok = ok && !math.IsNaN(vals[n-1-i])
		}
		if ok {
			show = append(show, shown{s.label, vals, s.c})
			all = append(all, vals...)
		}
	}
	if len(show) == 0 {
		return nil, nil
	}
	for i, r := range rows {
		labels[n-1-i] = fmt.Sprintf("%d. %s", r.Rank, shorten(r.Node, 40))
	}
	cp := newCapper(all, 0)
	title := "Output SQNR when one node is quantized"
	if rows[0].Mode == "float-one" {
		title = "Output SQNR when one node is left in float"
	}
	p := newPlot(title, "output SQNR (dB)", "")
	p.Y.Tick.Label.Font = font.From(sans, 8)
	lg := newLegend()
	barW := vg.Points(11) / vg.Length(len(show))
	for k, s := range show {
		vals := make(plotter.Values, n)
		for i, v := range s.vals {
			vals[i] = cp.at(v)
		}
		b, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, err
		}
		b.Horizontal = true
		b.Color = s.c
		b.LineStyle.Width = 0
		b.Offset = barW * (vg.Length(len(show)-1-k) - vg.Length(len(show)-1)/2)
		p.Add(b)
		if len(show) > 1 {
			lg.Add(s.label, b)
		}
	}
	p.NominalY(labels...)
	caption := title + fmt.Sprintf(" (top %d of %d by rank)", n, len(d.Sensitivity))
	if k := countInf(all); k > 0 {
		caption += fmt.Sprintf("; %d infinite values drawn at the edge of the axis", k)
	}
	return &figure{name: "sensitivity", caption: caption, p: p, legend: lg, w: 9 * vg.Inch, h: vg.Inch + vg.Points(14)*vg.Length(n)}, nil
}

// tuneFigures draws the metric tune reached against the number of raised
// nodes, the model size and the share of int8 MACs.
func tuneFigures(d *Data) ([]*figure, error) {
	if len(d.Tune) == 0 {
		return nil, nil
	}
	pts := slices.Clone(d.Tune)
	slices.SortStableFunc(pts, func(a, b TunePoint) int { return cmp.Compare(a.Raised, b.Raised) })
	metric := "metric"
	for _, t := range pts {
		if t.MetricName != "" {
			metric = t.MetricName
			break
		}
	}
	ys := make([]float64, len(pts))
	for i, t := range pts {
		ys[i] = t.Metric
	}
	var extra []float64
	target := d.TuneTarget
	if target != 0 && !math.IsNaN(target) && !math.IsInf(target, 0) {
		extra = append(extra, target)
	}
	cp := newCapper(ys, extra...)

	sizeUnit, sizeDiv := "MB", 1e6
	if !slices.ContainsFunc(pts, func(t TunePoint) bool { return t.SizeBytes >= 1e6 }) {
		sizeUnit, sizeDiv = "kB", 1e3
	}
	axes := []struct {
		name, title, xlabel string
		x                   func(TunePoint) float64
		curve               bool
	}{
		{"tune-raised", metric + " against nodes raised", "nodes raised", func(t TunePoint) float64 { return float64(t.Raised) }, true},
		{"tune-size", metric + " against model size", "model size (" + sizeUnit + ")", func(t TunePoint) float64 { return float64(t.SizeBytes) / sizeDiv }, false},
		{"tune-int8-macs", metric + " against int8 MAC share", "MACs in int8 (%)", func(t TunePoint) float64 { return 100 * t.Int8MACShare }, false},
	}
	// A line joins the points only when no node count repeats: the
	// search's bisection tries several sets of the same size.
	uniq := len(slices.CompactFunc(slices.Clone(pts), func(a, b TunePoint) bool { return a.Raised == b.Raised })) == len(pts)
	var figs []*figure
	for _, a := range axes {
		var xys, met, missed, chosen plotter.XYs
		var labels []string
		measured := false
		for i, t := range pts {
			x := a.x(t)
			if math.IsNaN(ys[i]) || math.IsNaN(x) || math.IsInf(x, 0) {
				continue
			}
			measured = measured || x != 0
			xy := plotter.XY{X: x, Y: cp.at(ys[i])}
			xys = append(xys, xy)
			labels = append(labels, strconv.Itoa(t.Raised))
			if t.Met {
				met = append(met, xy)
			} else {
				missed = append(missed, xy)
			}
			if t.Chosen {
				chosen = append(chosen, xy)
			}
		}
		if len(xys) == 0 || !measured && !a.curve {
			continue // size or MAC share not given
		}
		p := newPlot(a.title, a.xlabel, metric)
		p.X.Tick.Marker = niceTicks{integer: a.curve, chars: smallAxisChars}
		if a.curve && uniq {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.LineStyle = lineStyle(blue, 1, false)
			p.Add(l)
		}
		for _, set := range []struct {
			xys   plotter.XYs
			style draw.GlyphStyle
		}{
			{met, draw.GlyphStyle{Color: green, Radius: vg.Points(2.4), Shape: draw.CircleGlyph{}}},
			{missed, draw.GlyphStyle{Color: red, Radius: vg.Points(2.4), Shape: draw.RingGlyph{}}},
			{chosen, draw.GlyphStyle{Color: color.Black, Radius: vg.Points(5), Shape: draw.RingGlyph{}}},
		} {
			if len(set.xys) == 0 {
				continue
			}
			s, err := plotter.NewScatter(set.xys)
			if err != nil {
				return nil, err
			}
			s.GlyphStyle = set.style
			p.Add(s)
		}
		if !a.curve {
			// Each point is labelled with its number of raised nodes.
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return nil, err
			}
			for i := range lb.TextStyle {
				lb.TextStyle[i].Font = font.From(sans, 7)
			}
			lb.Offset = vg.Point{X: vg.Points(3), Y: vg.Points(2)}
			p.Add(lb)
		}
		if len(extra) > 0 {
			p.Add(hline{target, lineStyle(red, 1, true)})
			xmax := xys[0].X
			for _, xy := range xys {
				xmax = max(xmax, xy.X)
			}
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: xmax, Y: target}}, Labels: []string{"target " + num(target)}})
			if err != nil {
				return nil, err
			}
			lb.TextStyle[0].Font = font.From(sans, 8)
			lb.TextStyle[0].Color = red
			lb.TextStyle[0].XAlign = draw.XRight
			lb.Offset = vg.Point{Y: vg.Points(2)}
			p.Add(lb)
		}
		figs = append(figs, &figure{name: a.name, caption: a.title, p: p, w: 3.6 * vg.Inch, h: 2.6 * vg.Inch})
	}
	return figs, nil
}

// histFigure draws a tensor's float histogram on a log count axis with the
// encoding's range [QuantLo, QuantHi] marked and what lies outside it shaded.
// It returns nil for a tensor without a usable histogram.
func histFigure(t *TensorStats, name string) (*figure, error) {
	h := t.Hist
	if h == nil || len(h.Counts) == 0 || !finite(h.Lo) || !finite(h.Hi) || h.Hi < h.Lo {
		return nil, nil
	}
	lo, hi := h.Lo, h.Hi
	if hi == lo { // a constant tensor: one bar of some visible width
		pad := max(math.Abs(lo)*1e-3, 1e-6)
		lo, hi = lo-pad, hi+pad
	}
	counts, k := rebin(h.Counts, maxHistBins)
	// The last bin may merge fewer than k source bins: it ends at hi.
	width := (hi - lo) / float64(len(h.Counts)) * float64(k)
	var peak float64
	floor := math.Inf(1)
	for _, c := range counts {
		if c > 0 {
			peak = max(peak, c)
			floor = min(floor, c)
		}
	}
	title := fmt.Sprintf("%s: clip %s", shorten(t.Name, 44), pct(t.ClipRate))
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 9)
	p.X.Label.Text = "float value"
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 9)
		a.Tick.Label.Font = font.From(sans, 8)
		a.Tick.Marker = niceTicks{chars: smallAxisChars}
	}
	if peak > 0 {
		floor /= 2
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = "count (log)"
		xys := make(plotter.XYs, len(counts)+1)
		for i, c := range counts {
			xys[i] = plotter.XY{X: lo + float64(i)*width, Y: max(c, floor)}
		}
		xys[len(counts)] = plotter.XY{X: hi, Y: max(counts[len(counts)-1], floor)}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep
		l.FillColor = blue
		l.LineStyle.Width = 0 // the fill alone shows the bars, at half the bytes
		p.Add(l)
		p.Y.Min, p.Y.Max = floor, peak*2
	}
	xmin, xmax := lo, hi
	if finite(t.QuantLo) && finite(t.QuantHi) && t.QuantHi > t.QuantLo {
		xmin, xmax = min(xmin, t.QuantLo), max(xmax, t.QuantHi)
		shade := band{math.Inf(-1), t.QuantLo, clipShade}
		p.Add(shade, band{t.QuantHi, math.Inf(1), clipShade})
		edge := lineStyle(red, 1, true)
		p.Add(vline{t.QuantLo, edge}, vline{t.QuantHi, edge})
		p.X.Label.Text = fmt.Sprintf("float value; range [%s, %s] dashed, clipped shaded", num(t.QuantLo), num(t.QuantHi))
	}
	pad := 0.02 * (xmax - xmin)
	p.X.Min, p.X.Max = xmin-pad, xmax+pad
	return &figure{name: name, caption: title, p: p, w: 3.6 * vg.Inch, h: 2.3 * vg.Inch}, nil
}

// rebin sums each k adjacent bins, k the smallest that leaves at most n;
// negative and NaN counts (not counts at all) become empty bins.
func rebin(counts []float64, n int) (out []float64, k int) {
	k = max(1, (len(counts)+n-1)/n)
	out = make([]float64, (len(counts)+k-1)/k)
	for i, c := range counts {
		if c > 0 && !math.IsInf(c, 1) {
			out[i/k] += c
		}
	}
	return out, k
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// render draws f as SVG (for the page) or PNG (for files). The plotting
// library panics on some degenerate input; that becomes an error naming the
// figure.
func (f *figure) render(w io.Writer, format string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("report: drawing %s: %v", f.name, r)
		}
	}()
	switch format {
	case "svg":
		c := vgsvg.New(f.w, f.h)
		f.draw(draw.New(c))
		if _, err := c.WriteTo(w); err != nil {
			return fmt.Errorf("report: writing %s: %w", f.name, err)
		}
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(pngDPI))
		f.draw(draw.New(c))
		// Plots are flat colours: the fastest deflate level keeps the
		// files as small and takes a quarter less CPU time.
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(w, c.Image()); err != nil {
			return fmt.Errorf("report: writing %s: %w", f.name, err)
		}
	default:
		return fmt.Errorf("report: unknown figure format %q", format)
	}
	return nil
}

// draw draws the plot and, right of it, the legend, whose top lines up
// with the top of the data area.
func (f *figure) draw(c draw.Canvas) {
	if f.legend == nil || f.legend.Rectangle(c).Size().X == 0 {
		f.p.Draw(c)
		return
	}
	gap := vg.Points(8)
	w := f.legend.Rectangle(c).Size().X + 2*gap
	f.p.Draw(draw.Crop(c, 0, -w, 0, 0))
	top := f.p.Title.TextStyle.Rectangle(f.p.Title.Text).Size().Y + f.p.Title.Padding + gap
	f.legend.Draw(draw.Crop(c, c.Size().X-w+gap, 0, 0, -top))
}

// inlineSVG renders f as an <svg> element to put in HTML: without the XML
// prolog and comment the SVG writer starts with.
func (f *figure) inlineSVG() ([]byte, error) {
	var b bytes.Buffer
	if err := f.render(&b, "svg"); err != nil {
		return nil, err
	}
	s := b.Bytes()
	i := bytes.Index(s, []byte("<svg"))
	if i < 0 {
		return nil, fmt.Errorf("report: drawing %s: no <svg> element", f.name)
	}
	return s[i:], nil
}

// shorten keeps the end of a long name (where ONNX names say the most:
// ".../conv3/Relu_output_0") and marks the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// num formats a value for a label: short, and "inf"/"nan" spelled out.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func pct(v float64) string {
	if !finite(v) {
		return num(v)
	}
	return strconv.FormatFloat(100*v, 'f', 2, 64) + "%"
}
