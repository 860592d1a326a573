// Package migration reads a store's versioned schema files,
// migrations/NNNN_name.sql, embedded beside the store's code. The SQLite
// and ClickHouse stores and the dashboard's state file read theirs with
// it; each applies them its own way (SQLite in a transaction each,
// ClickHouse statement by statement, idempotent).
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// File is one migration: its version (the number its name starts with),
// its file name and its SQL.
type File struct {
	Version int
	Name    string
	Text    string
}

// Load returns the migrations of fsys (migrations/*.sql), in version
// order. A name that does not start with its number, or two files of one
// version, is an error: the binary was built wrong.
func Load(fsys fs.FS) ([]File, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []File
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: its name must start with its number (0001_...)", name)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, File{Version: v, Name: path.Base(name), Text: string(text)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have one version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Latest is the version of the last of files, 0 when there are none.
func Latest(files []File) int {
	if len(files) == 0 {
		return 0
	}
	return files[len(files)-1].Version
}

// TooNew is the error for a store whose schema version is newer than the
// binary's latest: a newer dmarcd wrote it. store names it ("the store
// /var/lib/dmarcd/dmarcd.db").
func TooNew(store string, version, latest int) error {
	return fmt.Errorf("%s has schema version %d, newer than this dmarcd knows (%d): a newer dmarcd wrote it; upgrade dmarcd (a store cannot be downgraded)", store, version, latest)
}
