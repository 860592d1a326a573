package figures

import "testing"

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 16326: "16,326", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestShare(t *testing.T) {
	for f, want := range map[float64]string{0: "0%", 0.0004: "<0.1%", 0.004: "0.4%", 0.075: "7.5%", 0.12: "12%", 1: "100%"} {
		if got := Share(f); got != want {
			t.Errorf("Share(%v) = %q, want %q", f, got, want)
		}
	}
}
