package sqlite

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONString: the writer's JSON arrays are byte for byte those of
// encoding/json (jsonArray), escapes included.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "example.com", "s1", "pass", `a"b`, `back\slash`, "tab\there", "<script>&", "héllo", "\u2028", "bad\xffutf8", "\x00"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
	list := []string{"a", "<b>", "c\"d"}
	got := jsonField(nil, list, func(s *string) string { return *s })
	if want := jsonArray(list); string(got) != want {
		t.Errorf("array: got %s, want %s", got, want)
	}
	if got := jsonField[string](nil, nil, func(s *string) string { return *s }); string(got) != jsonArray(nil) {
		t.Errorf("no values: got %s, want %s", got, jsonArray(nil))
	}
}
