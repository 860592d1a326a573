package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	files, err := Load(fstest.MapFS{
		"migrations/0002_more.sql":  {Data: []byte("B")},
		"migrations/0001_first.sql": {Data: []byte("A")},
		"migrations/README":         {Data: []byte("not a migration")},
	})
	if err != nil || len(files) != 2 || files[0].Name != "0001_first.sql" || files[1].Text != "B" || Latest(files) != 2 {
		t.Fatalf("Load: %+v %v", files, err)
	}
	for _, bad := range []fstest.MapFS{
		{"migrations/first.sql": {}},
		{"migrations/0001_a.sql": {}, "migrations/01_b.sql": {}},
	} {
		if _, err := Load(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if Latest(nil) != 0 || !strings.Contains(TooNew("the store x", 9, 7).Error(), "version 9, newer than this dmarcd knows (7)") {
		t.Error("Latest or TooNew")
	}
}
