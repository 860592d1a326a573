package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/ingest/aggregate"
	"github.com/dmarcd/dmarcd/ingest/failure"
	"github.com/dmarcd/dmarcd/ingest/unpack"
)

// The harness runs dmarcd's parser and the floor as child processes of its
// own binary, as it runs the peers, so that every parser pays for its
// process the same way and its peak memory is its own:
//
//	bench -child parse FILE...   dmarcd: unpack + aggregate decoder (+ failure parser)
//	bench -child floor FILE...   only decompress and tokenize the same bytes
//
// Each prints one line of JSON (counts) on standard error.
func child(mode string, files []string) error {
	var c counts
	start := time.Now()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		c.InputBytes += int64(len(data))
		switch mode {
		case "parse":
			err = parseDmarcd(data, &c)
		case "floor":
			err = parseFloor(f, data, &c)
		default:
			return fmt.Errorf("unknown child mode %q", mode)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	c.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stderr).Encode(c)
}

// parseDmarcd is what `dmarcd ingest` does with one input, without the
// store: find the reports (unpack.Walk), decode each aggregate report into
// its header and records, parse each failure report.
func parseDmarcd(data []byte, c *counts) error {
	return unpack.Walk(data, func(p *unpack.Payload) error {
		switch p.Kind {
		case unpack.Aggregate:
			cr := &countReader{r: p.Body}
			d := aggregate.NewDecoder(cr)
			if _, err := d.Header(); err != nil {
				return err
			}
			for {
				_, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				c.Records++
			}
			c.Reports++
			c.XMLBytes += cr.n
		case unpack.Failure:
			msg, err := io.ReadAll(p.Body)
			if err != nil {
				return err
			}
			if _, err := failure.Parse(msg, failure.Options{}); err != nil {
				return err
			}
			c.Reports++
		}
		return nil
	})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseFloor is the least work any parser must do on the same bytes:
// read the mail's MIME parts and decode the attachment's base64 (.eml),
// decompress (gzip, zip), and run encoding/xml's tokenizer over the XML
// without building anything. It counts <record> start tags, to check it
// saw what the parsers saw. RawToken, as dmarcd's decoder uses: it only
// splits the bytes into tokens (no namespace translation, no check that
// end tags match).
func parseFloor(name string, data []byte, c *counts) error {
	switch {
	case strings.HasSuffix(name, ".eml"):
		return floorMail(data, c)
	default:
		return floorContainer(data, c)
	}
}

func floorMail(data []byte, c *counts) error {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// The base64 decoder skips line breaks itself.
		if !strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
			continue
		}
		att, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
		if err != nil {
			return err
		}
		if err := floorContainer(att, c); err != nil {
			return err
		}
	}
}

func floorContainer(data []byte, c *counts) error {
	switch {
	case len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return err
		}
		return floorXML(zr, c)
	case len(data) > 4 && string(data[:4]) == "PK\x03\x04":
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return err
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				return err
			}
			err = floorXML(rc, c)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	default:
		return floorXML(bytes.NewReader(data), c)
	}
}

func floorXML(r io.Reader, c *counts) error {
	cr := &countReader{r: r}
	d := xml.NewDecoder(bufio.NewReaderSize(cr, 16<<10))
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "record" {
			c.Records++
		}
	}
	c.Reports++
	c.XMLBytes += cr.n
	return nil
}
