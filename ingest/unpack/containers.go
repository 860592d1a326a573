package unpack

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
)

// gunzip descends into a gzip stream (RFC 1952). Several reporters gzip an
// already gzipped file; the decompressed stream is sniffed again.
func (w *walker) gunzip(r *bufio.Reader, part string, depth int) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%s: reading gzip: %w", where(part), err)
	}
	defer zr.Close()
	zr.Multistream(false)
	return w.stream(&gzipMembers{r: r, zr: zr}, part+">gunzip", depth+1, "", false)
}

// gzipMembers reads the members of a gzip stream one after the other
// (RFC 1952 §2.2), and stops at bytes after the last member that do not
// start another: some mailers append a line break to the attachment
// (corpus: parsedmarc mimecast-weird-gzip.eml), which the standard
// library's multistream reading refuses.
type gzipMembers struct {
	r  *bufio.Reader // a ByteReader: gzip reads no further than a member's end
	zr *gzip.Reader
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if next, _ := g.r.Peek(len(magicGzip)); !bytes.Equal(next, magicGzip) {
			return n, io.EOF
		}
		if err := g.zr.Reset(g.r); err != nil {
			return n, err
		}
		g.zr.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

// unzip descends into each file of a zip archive. A zip is read from its
// central directory at the end, so the archive is held in memory, bounded
// by MaxZipBytes; each member's content is bounded like any report.
func (w *walker) unzip(r io.Reader, part string, depth int) error {
	data, err := readAtMost(r, MaxZipBytes, part, "MaxZipBytes")
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("%s: reading zip: %w", where(part), err)
	}
	members := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || isJunkMember(f.Name) {
			continue
		}
		members++
		if members > MaxZipMembers {
			return fmt.Errorf("%s: %w: zip holds more than MaxZipMembers (%d) files", where(part), ErrTooLarge, MaxZipMembers)
		}
		if err := w.zipMember(f, part, depth); err != nil {
			return err
		}
	}
	if members == 0 {
		w.skipped = append(w.skipped, describe(part, "", "zip archive with no files"))
	}
	return nil
}

func (w *walker) zipMember(f *zip.File, part string, depth int) error {
	memberPart := part + ">zip:" + f.Name
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: opening zip member: %w", where(memberPart), err)
	}
	defer rc.Close()
	return w.stream(rc, memberPart, depth+1, "", false)
}

// isJunkMember tells the files that archivers add beside the report.
func isJunkMember(name string) bool {
	base := path.Base(name)
	return strings.HasPrefix(name, "__MACOSX/") || base == ".DS_Store" || base == "Thumbs.db"
}

// readAtMost reads all of r, failing beyond max bytes (named by limit).
func readAtMost(r io.Reader, max int64, part, limit string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading: %w", where(part), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: more than %s (%d bytes)", where(part), ErrTooLarge, limit, max)
	}
	return data, nil
}
