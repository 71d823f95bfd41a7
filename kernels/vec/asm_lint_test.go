package vec

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// legacySSE matches a legacy-encoded (non-VEX) SSE instruction on an X
// register. Run while the upper halves of the Y/Z registers are dirty (after
// a 256- or 512-bit instruction, before VZEROUPPER), one costs about 240 ns
// on the AVX-512 machines here: a 197-float row's masked tail in MaxOf took
// 16x its whole loop through one "MOVQ R8, X4".
var legacySSE = regexp.MustCompile(`^\s*(MOVQ|MOVL|MOVD|MOVSS|MOVSD|MOVAPS|MOVUPS|MOVHLPS|MOVLHPS|CVT\w+|PINSR\w|PEXTR\w|PSHUFD|PXOR|XORPS|ANDPS|ORPS|SHUFPS|UNPCK\w+|ADD[SP]S|SUB[SP]S|MUL[SP]S|DIV[SP]S|SQRT[SP]S|MAX[SP]S|MIN[SP]S|U?COMISS)\s[^/]*\bX\d+\b`)

var wideReg = regexp.MustCompile(`\b[YZ]\d+\b`)

// TestAsmNoLegacySSEWhileDirty checks every assembly file of the module:
// within a routine, no legacy SSE instruction follows a Y or Z register's
// use before VZEROUPPER, and no RET leaves the upper halves dirty for the Go
// code after it (whose float arithmetic is legacy SSE). The scan is linear
// (jumps are not followed), which the generated routines' layout suits.
func TestAsmNoLegacySSEWhileDirty(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".s") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		routine, dirty := "", false
		for i, line := range strings.Split(string(src), "\n") {
			code := strings.TrimSpace(strings.SplitN(line, "//", 2)[0])
			switch {
			case strings.HasPrefix(code, "TEXT"):
				routine, dirty = code, false
				continue
			case strings.HasPrefix(code, "VZEROUPPER"):
				dirty = false
				continue
			}
			if dirty && legacySSE.MatchString(code) {
				t.Errorf("%s:%d: legacy SSE %q with dirty upper registers in %s", path, i+1, code, routine)
			}
			if dirty && strings.HasPrefix(code, "RET") {
				t.Errorf("%s:%d: RET without VZEROUPPER in %s", path, i+1, routine)
			}
			if wideReg.MatchString(code) {
				dirty = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("scanned %d assembly files; expected the module's (run from kernels/vec)", n)
	}
	t.Logf("%d assembly files scanned", n)
}
