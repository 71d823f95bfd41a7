package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"

	"github.com/onnxq/onnxq/internal/atomicfile"
)

const (
	// worstRows is how many of the lowest-SQNR tensors the page lists.
	worstRows = 20
	// openHistograms is how many histograms (highest clip rate first) show
	// before the rest fold away: ~300 open figures make a slow page.
	openHistograms = 12
	// maxPageHistograms bounds the page for models with thousands of
	// tensors (~10 kB a histogram); the PNG plots have them all.
	maxPageHistograms = 400
)

// WriteHTML writes the report as one self-contained HTML page: styles
// inline, every figure an inline SVG, nothing fetched when it is opened.
// The same Data gives the same bytes.
func WriteHTML(path string, d *Data) error {
	b, err := renderHTML(d)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, b); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

type htmlFigure struct {
	ID, Caption string
	SVG         template.HTML
}

type histEntry struct {
	Fig    htmlFigure
	Tensor *TensorStats
}

type page struct {
	*Data
	Layered      bool
	FirstBadM    *Metric
	WorstM       *Metric
	Under        int
	Worst        []Metric
	WorstNotes   bool // a worst tensor has a note: show the column
	LayerFigs    []htmlFigure
	SensFig      *htmlFigure
	SensRows     []SensitivityRow
	TuneFigs     []htmlFigure
	TunePoints   []TunePoint
	OpenHists    []histEntry
	FoldedHists  []histEntry
	StatsOpen    bool
	NoHistograms int
	LeftOut      int // histograms not on the page
	Nav          []navLink
}

// navLink points at one section of the page.
type navLink struct{ ID, Text string }

func toHTML(f *figure) (htmlFigure, error) {
	svg, err := f.inlineSVG()
	if err != nil {
		return htmlFigure{}, err
	}
	// The SVG comes from the plotting library, which escapes all text.
	return htmlFigure{ID: "fig-" + f.name, Caption: f.caption, SVG: template.HTML(svg)}, nil
}

func renderHTML(d *Data) ([]byte, error) {
	if d == nil {
		return nil, fmt.Errorf("report: no data")
	}
	pg := &page{Data: d, Layered: len(d.Layers) > 0}
	for i := range d.Layers {
		m := &d.Layers[i]
		if m.Name == d.FirstBad && pg.FirstBadM == nil {
			pg.FirstBadM = m
		}
		if m.Name == d.WorstContributor && pg.WorstM == nil {
			pg.WorstM = m
		}
		if bad(*m, d.Thresholds) {
			pg.Under++
		}
	}
	pg.Worst = worstLayers(d.Layers, worstRows)
	pg.WorstNotes = slices.ContainsFunc(pg.Worst, func(m Metric) bool { return m.Note != "" })

	figs, err := layerFigures(d)
	if err != nil {
		return nil, err
	}
	for _, f := range figs {
		h, err := toHTML(f)
		if err != nil {
			return nil, err
		}
		pg.LayerFigs = append(pg.LayerFigs, h)
	}
	sf, err := sensitivityFigure(d)
	if err != nil {
		return nil, err
	}
	if sf != nil {
		h, err := toHTML(sf)
		if err != nil {
			return nil, err
		}
		pg.SensFig = &h
	}
	pg.SensRows = sortedSensitivity(d.Sensitivity)
	tf, err := tuneFigures(d)
	if err != nil {
		return nil, err
	}
	for _, f := range tf {
		h, err := toHTML(f)
		if err != nil {
			return nil, err
		}
		pg.TuneFigs = append(pg.TuneFigs, h)
	}
	pg.TunePoints = d.Tune // in the order the search tried them

	hists, drawable, err := histEntries(d)
	if err != nil {
		return nil, err
	}
	n := min(len(hists), openHistograms)
	pg.OpenHists, pg.FoldedHists = hists[:n], hists[n:]
	pg.StatsOpen = len(d.Tensors) <= 30
	pg.NoHistograms = len(d.Tensors) - drawable
	pg.LeftOut = drawable - len(hists)

	for _, l := range []struct {
		show     bool
		id, text string
	}{
		{len(d.Outputs) > 0, "outputs", "outputs"},
		{pg.Layered, "layers", "layerwise"},
		{pg.Layered, "worst", "worst tensors"},
		{len(pg.SensRows) > 0, "sensitivity", "sensitivity"},
		{len(pg.TunePoints) > 0, "tune", "tune"},
		{len(d.Tensors) > 0, "tensors", "tensor statistics"},
		{len(hists) > 0, "histograms", "histograms"},
	} {
		if l.show {
			pg.Nav = append(pg.Nav, navLink{l.id, l.text})
		}
	}

	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, pg); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Bytes(), nil
}

// histEntries draws the histograms of the tensors with the highest clip
// rates, at most maxPageHistograms; it also returns how many tensors have
// a histogram to draw.
func histEntries(d *Data) (shown []histEntry, drawable int, err error) {
	stems := histStems(d.Tensors)
	var all []histEntry
	var figs []*figure
	for i := range d.Tensors {
		f, err := histFigure(&d.Tensors[i], stems[i])
		if err != nil {
			return nil, 0, err
		}
		if f != nil {
			all = append(all, histEntry{Tensor: &d.Tensors[i]})
			figs = append(figs, f)
		}
	}
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(orLow(all[b].Tensor.ClipRate), orLow(all[a].Tensor.ClipRate))
	})
	for _, i := range order[:min(len(order), maxPageHistograms)] {
		h, err := toHTML(figs[i])
		if err != nil {
			return nil, 0, err
		}
		all[i].Fig = h
		shown = append(shown, all[i])
	}
	return shown, len(all), nil
}

// orLow sorts NaN below every number.
func orLow(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	return v
}

// bad reports whether m misses a threshold.
func bad(m Metric, t Thresholds) bool {
	return t.Cos != 0 && m.Cosine < t.Cos || t.SQNR != 0 && effectiveSQNR(m) < t.SQNR
}

// effectiveSQNR is the lower of the total and the median channel SQNR.
func effectiveSQNR(m Metric) float64 {
	if m.ChannelSQNR != nil && *m.ChannelSQNR < m.SQNR {
		return *m.ChannelSQNR
	}
	return m.SQNR
}

// worstLayers returns the n layers with the lowest SQNR (the channel median
// where it is lower), lowest first; NaN
// (not measured) never counts as worst, ties keep topological order.
func worstLayers(layers []Metric, n int) []Metric {
	out := slices.Clone(layers)
	slices.SortStableFunc(out, func(a, b Metric) int {
		return cmp.Compare(orHigh(effectiveSQNR(a)), orHigh(effectiveSQNR(b)))
	})
	return out[:min(n, len(out))]
}

func orHigh(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(1)
	}
	return v
}

func fmtCos(v float64) string {
	if !finite(v) {
		return num(v)
	}
	return fmt.Sprintf("%.6f", v)
}

func fmtDB(v float64) string {
	if !finite(v) {
		return num(v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMB(b int64) string { return fmt.Sprintf("%.2f", float64(b)/1e6) }

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"cos": fmtCos,
	"db":  fmtDB,
	"g":   num,
	"pct": pct,
	"mb":  fmtMB,
	"bad": bad,
	"chdb": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmtDB(*v)
	},
	"top1": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return pct(*v)
	},
	// A NaN in a sensitivity split was not measured.
	"mcos": func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmtCos(v)
	},
	"mdb": func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmtDB(v)
	},
	"join": func(s []string) string {
		var b bytes.Buffer
		for i, x := range s {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(x)
		}
		return b.String()
	},
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Title}}{{.Title}}{{else}}onnxq report{{end}}</title>
<style>
body{font:14px/1.45 "Liberation Sans",Arial,Helvetica,sans-serif;color:#222;margin:0 auto;padding:16px 24px;max-width:1240px}
h1{font-size:22px;margin:4px 0 8px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}
td.name,th.name{text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:160px;max-width:420px}
.scroll{overflow-x:auto;max-width:100%}
tr.bad td{background:#fde8e8}
tr.chosen td{background:#e6f4e6;font-weight:bold}
.meta td{text-align:left;border:none;padding:1px 10px 1px 0}
.warn{background:#fff4d6;border:1px solid #e8c65a;padding:6px 12px;margin:8px 0}
.notes{background:#eef5fb;border:1px solid #b8d4ea;padding:6px 12px;margin:8px 0}
.warn ul,.notes ul{margin:2px 0;padding-left:20px}
figure{margin:8px 0;display:inline-block;vertical-align:top}
figure svg{max-width:100%;height:auto;display:block}
figure svg text{font-family:"Liberation Sans",Arial,Helvetica,sans-serif!important}
figcaption{font-size:12px;color:#555;max-width:720px}
.grid{display:flex;flex-wrap:wrap;gap:6px 14px}
.grid figure{width:360px}
.small{font-size:12px;color:#555}
details{margin:6px 0}
summary{cursor:pointer;font-weight:bold}
</style>
</head>
<body>
<h1>{{if .Title}}{{.Title}}{{else}}onnxq report{{end}}</h1>
<nav class="small">
{{- range $i, $l := .Nav}}{{if $i}} ·{{end}} <a href="#{{$l.ID}}">{{$l.Text}}</a>{{end}}
</nav>
<section id="summary">
<table class="meta">
{{- if .FloatModel}}<tr><td>float model</td><td>{{.FloatModel}}</td></tr>{{end}}
{{- if .QuantModel}}<tr><td>quantized model</td><td>{{.QuantModel}}</td></tr>{{end}}
{{- if .Samples}}<tr><td>samples</td><td>{{.Samples}}</td></tr>{{end}}
{{- if or .Thresholds.Cos .Thresholds.SQNR}}<tr><td>thresholds</td><td>{{if .Thresholds.Cos}}cosine {{g .Thresholds.Cos}}{{end}}{{if and .Thresholds.Cos .Thresholds.SQNR}}, {{end}}{{if .Thresholds.SQNR}}SQNR {{g .Thresholds.SQNR}} dB{{end}}</td></tr>{{end}}
{{- if .Layered}}<tr><td>tensors compared</td><td>{{len .Layers}} ({{.Under}} under a threshold)</td></tr>{{end}}
{{- if .FirstBad}}<tr><td>first under threshold</td><td><b>{{.FirstBad}}</b>{{with .FirstBadM}} (position {{.Index}}{{if .OpType}}, {{.OpType}}{{end}}: cosine {{cos .Cosine}}, SQNR {{db .SQNR}} dB{{with .ChannelSQNR}}, channel median {{db .}} dB{{end}}){{end}}</td></tr>
{{- else if .Layered}}<tr><td>first under threshold</td><td>none</td></tr>{{end}}
{{- if .WorstContributor}}<tr><td>worst contributor</td><td><b>{{.WorstContributor}}</b>{{with .WorstM}} (position {{.Index}}{{if .OpType}}, {{.OpType}}{{end}}: SQNR {{db .SQNR}} dB){{end}}</td></tr>{{end}}
</table>
{{- if .Notes}}
<div class="notes"><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul></div>
{{- end}}
{{- if .Warnings}}
<div class="warn" id="warnings"><b>Warnings</b><ul>{{range .Warnings}}<li>{{.}}</li>{{end}}</ul></div>
{{- end}}
</section>
{{- if .Outputs}}
<section id="outputs">
<h2>Outputs</h2>
<table>
<tr><th class="name">output</th><th>cosine</th><th>SQNR (dB)</th><th>MSE</th><th>max abs error</th><th>top-1 agreement</th></tr>
{{- range .Outputs}}
<tr{{if bad . $.Thresholds}} class="bad"{{end}}><td class="name">{{.Name}}</td><td>{{cos .Cosine}}</td><td>{{db .SQNR}}</td><td>{{g .MSE}}</td><td>{{g .MaxAbs}}</td><td>{{top1 .Top1}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}
{{- if .Layered}}
<section id="layers">
<h2>Layerwise error over depth</h2>
<p class="small">Each point is one tensor of the float model compared with its counterpart in the quantized model, in topological order.</p>
{{- range .LayerFigs}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
</section>
<section id="worst">
<h2>Worst tensors (lowest SQNR)</h2>
<p class="small">By the lower of the total SQNR and the median channel SQNR.</p>
<table>
<tr><th>position</th><th class="name">tensor</th><th>op</th><th class="name">node</th><th>cosine</th><th>SQNR (dB)</th><th>channel SQNR (dB, median)</th><th>MSE</th><th>max abs error</th><th>quantized</th>{{if .WorstNotes}}<th class="name">note</th>{{end}}</tr>
{{- range .Worst}}
<tr{{if bad . $.Thresholds}} class="bad"{{end}}><td>{{.Index}}</td><td class="name">{{.Name}}</td><td>{{.OpType}}</td><td class="name">{{.Node}}</td><td>{{cos .Cosine}}</td><td>{{db .SQNR}}</td><td>{{chdb .ChannelSQNR}}</td><td>{{g .MSE}}</td><td>{{g .MaxAbs}}</td><td>{{if .Quantized}}yes{{else}}no{{end}}</td>{{if $.WorstNotes}}<td class="name">{{.Note}}</td>{{end}}</tr>
{{- end}}
</table>
</section>
{{- end}}
{{- if .SensRows}}
<section id="sensitivity">
<h2>Sensitivity</h2>
{{- with .SensFig}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
<table>
<tr><th>rank</th><th class="name">node</th><th>op</th><th>mode</th><th>cosine</th><th>SQNR (dB)</th><th>weights: cosine</th><th>weights: SQNR</th><th>activations: cosine</th><th>activations: SQNR</th></tr>
{{- range .SensRows}}
<tr><td>{{.Rank}}</td><td class="name">{{.Node}}</td><td>{{.OpType}}</td><td>{{.Mode}}</td><td>{{cos .Cosine}}</td><td>{{db .SQNR}}</td><td>{{mcos .WeightCosine}}</td><td>{{mdb .WeightSQNR}}</td><td>{{mcos .ActCosine}}</td><td>{{mdb .ActSQNR}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}
{{- if .TunePoints}}
<section id="tune">
<h2>Tune: accuracy against cost</h2>
<p class="small">Each point is one model the search tried: filled green where it meets the target, a red ring where it misses, a large black ring around the result.</p>
<div class="grid">
{{- range .TuneFigs}}
<figure id="{{.ID}}">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{- end}}
</div>
<table>
<tr><th>step</th><th>nodes raised</th><th>metric</th><th>value</th><th>target</th><th>size (MB)</th><th>int8 MACs</th><th class="name">raised nodes</th></tr>
{{- range .TunePoints}}
<tr{{if .Chosen}} class="chosen"{{end}}><td>{{.Phase}}</td><td>{{.Raised}}</td><td>{{.MetricName}}</td><td>{{g .Metric}}</td><td>{{if .Met}}meets{{else}}misses{{end}}</td><td>{{mb .SizeBytes}}</td><td>{{pct .Int8MACShare}}</td><td class="name">{{join .Nodes}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}
{{- if .Tensors}}
<section id="tensors">
<h2>Tensor statistics</h2>
<details{{if .StatsOpen}} open{{end}}><summary>{{len .Tensors}} tensors, float against dequantized</summary>
<div class="scroll"><table>
<tr><th class="name">tensor</th><th>kind</th><th>type</th><th>scale</th><th>zero point</th><th>observer</th><th>range</th><th>clip rate</th><th>cosine</th><th>float min / median / max</th><th>float mean</th><th>dequant min / median / max</th><th>dequant mean</th><th>zeros float / dequant</th></tr>
{{- range .Tensors}}
<tr><td class="name">{{.Name}}</td><td>{{.Kind}}</td><td>{{.DType}}{{if .Bits}} ({{.Bits}} bit){{end}}</td>
{{- if .Bits}}<td>{{g .Scale}}</td><td>{{.ZeroPoint}}</td>{{else}}<td>–</td><td>–</td>{{end}}<td>{{.Observer}}</td>
<td>{{if lt .QuantLo .QuantHi}}[{{g .QuantLo}}, {{g .QuantHi}}]{{else}}–{{end}}</td><td>{{if .Bits}}{{pct .ClipRate}}{{else}}–{{end}}</td><td>{{cos .Cosine}}</td>
{{- with .Float}}<td>{{g .Min}} / {{g .Median}} / {{g .Max}}</td><td>{{g .Mean}}</td>{{end}}
{{- with .Dequant}}<td>{{g .Min}} / {{g .Median}} / {{g .Max}}</td><td>{{g .Mean}}</td>{{end}}<td>{{pct .Float.ZeroShare}} / {{pct .Dequant.ZeroShare}}</td></tr>
{{- end}}
</table></div>
</details>
</section>
{{- end}}
{{- if or .OpenHists .FoldedHists}}
<section id="histograms">
<h2>Float histograms and clipping ranges</h2>
<p class="small">Float values of each tensor (log counts); for a quantized tensor the dashed lines bound the range its encoding represents, and values in the shaded parts are clipped. Highest clip rate first.{{if .NoHistograms}} {{.NoHistograms}} tensors have no histogram.{{end}}{{if .LeftOut}} The {{.LeftOut}} tensors with the lowest clip rates are left out of this page; the PNG plots have them all.{{end}}</p>
<div class="grid">
{{- range .OpenHists}}
<figure id="{{.Fig.ID}}">{{.Fig.SVG}}<figcaption>{{with .Tensor}}{{.Name}}: {{.Kind}}, {{.DType}}, scale {{g .Scale}}, zero point {{.ZeroPoint}}{{if .Observer}}, {{.Observer}}{{end}}, cosine {{cos .Cosine}}{{end}}</figcaption></figure>
{{- end}}
</div>
{{- if .FoldedHists}}
<details><summary>{{len .FoldedHists}} more tensors</summary>
<div class="grid">
{{- range .FoldedHists}}
<figure id="{{.Fig.ID}}">{{.Fig.SVG}}<figcaption>{{with .Tensor}}{{.Name}}: {{.Kind}}, {{.DType}}, scale {{g .Scale}}, zero point {{.ZeroPoint}}{{if .Observer}}, {{.Observer}}{{end}}, cosine {{cos .Cosine}}{{end}}</figcaption></figure>
{{- end}}
</div>
</details>
{{- end}}
</section>
{{- end}}
</body>
</html>
`
