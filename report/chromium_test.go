package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromium finds the browser (Debian package chromium, which `make
// testdata` installs); without it the test skips, unless ONNXQ_REQUIRE_DATA
// is set.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
		t.Fatal("chromium not found: run `make testdata`")
	}
	t.Skip("chromium not found: run `make testdata`")
	return ""
}

// requestLog is an HTTP proxy that forwards nothing but records every
// request that reaches it: the browser sends all its traffic there, loopback
// included, so nothing leaves the machine and every attempt is seen.
type requestLog struct {
	mu    sync.Mutex
	hosts []string
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, host)
	l.mu.Unlock()
	http.Error(w, "no network in this test", http.StatusForbidden)
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.hosts
	l.hosts = nil
	return out
}

func startProxy(t *testing.T) (*requestLog, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &requestLog{}
	srv := &http.Server{Handler: log, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return log, ln.Addr().String()
}

// browserRun is what one Chromium run did on the network, from its NetLog:
// Chromium's own service requests (update checks, network time, account
// lookups: no initiator) and the requests the page made (initiator "null",
// the opaque origin of a file:// page, or any other origin).
type browserRun struct {
	stdout       []byte
	page         []string // URLs the page requested
	browserHosts map[string]bool
}

// runChromium runs headless Chromium on the file page with all traffic sent
// to the logging proxy at proxy and host names unresolvable, in a fresh
// profile, and reads back its NetLog.
func runChromium(t *testing.T, bin, proxy, page string, args ...string) browserRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	netlog := filepath.Join(t.TempDir(), "netlog.json")
	all := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
		"--proxy-server=http://" + proxy,
		"--proxy-bypass-list=<-loopback>", // the loopback too goes through the proxy
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--log-net-log=" + netlog,
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
		"--hide-scrollbars", "--virtual-time-budget=5000",
	}, args...)
	all = append(all, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 20))
	}
	run := browserRun{stdout: stdout.Bytes(), browserHosts: map[string]bool{}}
	b, err := os.ReadFile(netlog)
	if err != nil {
		t.Fatalf("chromium wrote no NetLog: %v", err)
	}
	var nl struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL       string `json:"url"`
				Initiator string `json:"initiator"`
			} `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &nl); err != nil {
		t.Fatalf("chromium NetLog: %v", err)
	}
	start, ok := nl.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		t.Fatal("chromium NetLog has no URL_REQUEST_START_JOB event type")
	}
	for _, e := range nl.Events {
		if e.Type != start || e.Params.URL == "" {
			continue
		}
		if e.Params.Initiator == "" || e.Params.Initiator == "not an origin" {
			if u, err := url.Parse(e.Params.URL); err == nil {
				run.browserHosts[u.Hostname()] = true
			}
			continue
		}
		run.page = append(run.page, e.Params.URL)
	}
	return run
}

// checkNoLeak fails unless every host that reached the proxy is one that
// Chromium itself asked for, and the page asked for nothing.
func checkNoLeak(t *testing.T, what string, run browserRun, proxied []string) {
	t.Helper()
	if len(run.page) > 0 {
		t.Errorf("%s made %d network requests: %v", what, len(run.page), run.page)
	}
	for _, h := range proxied {
		if !run.browserHosts[h] {
			t.Errorf("%s: a request to %s reached the proxy that Chromium's NetLog does not show as its own", what, h)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	log, proxy := startProxy(t)

	// The detector works: a page that does fetch something is caught, by
	// the NetLog and by the proxy.
	control := filepath.Join(dir, "control.html")
	os.WriteFile(control, []byte(`<!DOCTYPE html><html><body><p>control</p><img src="http://onnxq-report-test.invalid/x.png"></body></html>`), 0o644)
	run := runChromium(t, bin, proxy, control, "--dump-dom")
	proxied := log.take()
	if len(run.page) != 1 || !strings.Contains(run.page[0], "onnxq-report-test.invalid") {
		t.Fatalf("the NetLog shows page requests %v for the control page, want its one image", run.page)
	}
	if !slices.Contains(proxied, "onnxq-report-test.invalid") {
		t.Fatalf("the control page's image request did not reach the logging proxy (saw %v)", proxied)
	}

	d := synthData(120)
	page := filepath.Join(dir, "report.html")
	if err := WriteHTML(page, d); err != nil {
		t.Fatal(err)
	}
	run = runChromium(t, bin, proxy, page, "--dump-dom")
	checkNoLeak(t, "the report (--dump-dom)", run, log.take())
	dom := string(run.stdout)
	hists := 0
	for _, ts := range d.Tensors {
		if ts.Hist != nil {
			hists++
		}
	}
	// 2 depth curves, the sensitivity chart, 3 tune curves, one histogram
	// per tensor.
	if got, want := strings.Count(dom, "<svg"), 2+1+3+hists; got != want {
		t.Errorf("rendered page has %d <svg> elements, want %d", got, want)
	}
	if got := strings.Count(dom, "<table"); got != 6 { // summary, outputs, worst, sensitivity, tune, tensors
		t.Errorf("rendered page has %d tables, want 6", got)
	}
	for _, id := range []string{"summary", "outputs", "layers", "worst", "sensitivity", "tune", "tensors", "histograms"} {
		if !strings.Contains(dom, `id="`+id+`"`) {
			t.Errorf("rendered page lacks section %q", id)
		}
	}
	if !strings.Contains(dom, d.FirstBad) {
		t.Errorf("rendered page does not name the first bad tensor %s", d.FirstBad)
	}

	const w, h = 1280, 1600
	shot := filepath.Join(dir, "shot.png")
	run = runChromium(t, bin, proxy, page, fmt.Sprintf("--window-size=%d,%d", w, h), "--screenshot="+shot)
	checkNoLeak(t, "the report (--screenshot)", run, log.take())
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	nonWhite, plotBlue := countPixels(img)
	// The top of the page: tables, notes, warnings and the two depth
	// curves drawn in the plots' blue.
	if share := float64(nonWhite) / (w * h); share < 0.05 {
		t.Errorf("screenshot is nearly blank: %.1f%% non-white pixels", 100*share)
	}
	if plotBlue < 500 {
		t.Errorf("screenshot shows %d pixels of the plots' blue, want the depth curves (>= 500)", plotBlue)
	}
	t.Logf("screenshot %dx%d: %.1f%% non-white, %d plot-blue pixels, page %d bytes", w, h, 100*float64(nonWhite)/(w*h), plotBlue, fileSize(t, page))
}

func countPixels(img image.Image) (nonWhite, plotBlue int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 245 || g < 245 || bl < 245 {
				nonWhite++
			}
			if near(r, 31) && near(g, 119) && near(bl, 180) {
				plotBlue++
			}
		}
	}
	return nonWhite, plotBlue
}

func near(v, want uint32) bool { return v+12 >= want && v <= want+12 }

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
