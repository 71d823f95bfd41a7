package converter

import (
	"os"
	"testing"
)

func mustMkdir(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
