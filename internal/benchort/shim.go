//go:build ort

package main

import (
	"fmt"
	"os"
	"testing"
)

// tbShim is a testing.TB for a program: Skip and Fatal end it with a message.
type tbShim struct{ testing.TB }

func (tbShim) Helper() {}
func (tbShim) Skipf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
func (tbShim) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
