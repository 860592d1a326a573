package aggregate

import "sync/atomic"

// Why encoding/xml, not the scanner, reads a document or the rest of one:
// the values of Decoder.Fallback and the keys of Fallbacks. The results
// are the same either way; encoding/xml is slower.
const (
	// FallbackCharset: the document is in a charset that is converted
	// (its XML declaration names windows-1252, ISO 8859-1, ...): all of
	// it.
	FallbackCharset = "charset"

	// FallbackDoctype: a <!DOCTYPE> or another markup declaration
	// (XML 1.0 §2.8): from there on.
	FallbackDoctype = "doctype"

	// FallbackDeclaration: an XML declaration not of the regular form
	// (XML 1.0 §2.8; see declaredLabel): from there on.
	FallbackDeclaration = "declaration"

	// FallbackOther: XML that is not well-formed, or that encoding/xml
	// reads only by its leniency (an attribute value not quoted), names
	// not in ASCII, a token near MaxTokenBytes, the input ending or
	// failing inside a token: from there on, so that the error, or the
	// result, is encoding/xml's.
	FallbackOther = "other"
)

// FallbackReasons lists the reasons, in a fixed order.
var FallbackReasons = []string{FallbackCharset, FallbackDoctype, FallbackDeclaration, FallbackOther}

// fallbacks counts the documents of each reason, in the order of
// FallbackReasons.
var fallbacks [4]atomic.Int64

func countFallback(reason string) {
	for i, r := range FallbackReasons {
		if r == reason {
			fallbacks[i].Add(1)
			return
		}
	}
}

// Fallbacks returns how many documents, since the program started, were
// read by encoding/xml in whole or from some point on, by reason (each
// reason of FallbackReasons is there, zero or not). A document counts once,
// when the fallback begins.
func Fallbacks() map[string]int64 {
	m := make(map[string]int64, len(FallbackReasons))
	for i, r := range FallbackReasons {
		m[r] = fallbacks[i].Load()
	}
	return m
}

// Fallback returns why encoding/xml read the document or the rest of it,
// one of FallbackReasons, or "" while the scanner reads it.
func (d *Decoder) Fallback() string {
	return d.fallback
}
