// Package figures writes numbers for people, the same in the terminal,
// Slack and the web page: counts with thousands separators, shares as
// percentages with the precision they deserve.
package figures

import (
	"strconv"
	"strings"
)

// Count writes n with thousands separators: 16,326.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Share writes a share 0..1 as a percentage: one decimal below 10% (0.4%,
// 7.5%), none above (12%, 100%), "<0.1%" for a share too small to show
// and "0%" for none.
func Share(f float64) string {
	switch p := 100 * f; {
	case p == 0:
		return "0%"
	case p < 0.1:
		return "<0.1%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
}
