package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
)

// Input is one file to ingest: a report, a mail message, or a Maildir
// message.
type Input struct {
	// Name is the path, or "-" for standard input.
	Name string
	open func() (io.ReadCloser, error)
}

// Expand turns command-line arguments into inputs: a file; a folder, read
// recursively (a Maildir's cur/ and new/ are folders like any other; its
// tmp/, holding deliveries in progress, is skipped); "-" for standard
// input. Hidden files are skipped. The order is stable (sorted by path).
// An entry of a folder that cannot be read is an error: ExpandWith reports
// it and carries on.
func Expand(args []string) ([]Input, error) {
	inputs, skipped, err := ExpandWith(args, ExpandOptions{})
	for _, s := range skipped {
		if s.Unreadable && err == nil {
			err = fmt.Errorf("reading %s: %s", s.Path, s.Reason)
		}
	}
	return inputs, err
}

// ExpandOptions say what Expand leaves out.
type ExpandOptions struct {
	// Exclude are files never read, whatever the arguments: the store's
	// own files (dmarcd.db and its -wal and -shm) when it lives in a
	// folder being ingested.
	Exclude []string
}

// Skip is an entry of a folder that ExpandWith left out, and why.
type Skip struct {
	Path   string
	Reason string
	// Unreadable: the entry could not be read (permissions, I/O); else
	// it was left out on purpose (a symbolic link, the store's file).
	Unreadable bool
}

// ExpandWith is Expand, reporting the entries it left out instead of
// failing on them: unreadable files and folders, symbolic links inside a
// folder (not followed, so that a walk never leaves the folder or loops),
// and the excluded files. An argument that does not exist is an error.
func ExpandWith(args []string, opts ExpandOptions) ([]Input, []Skip, error) {
	var excluded []os.FileInfo
	for _, p := range opts.Exclude {
		if fi, err := os.Stat(p); err == nil {
			excluded = append(excluded, fi)
		}
	}
	isExcluded := func(fi os.FileInfo) bool {
		for _, x := range excluded {
			if os.SameFile(fi, x) {
				return true
			}
		}
		return false
	}
	var inputs []Input
	var skipped []Skip
	for _, arg := range args {
		if arg == "-" {
			inputs = append(inputs, Input{Name: "-", open: func() (io.ReadCloser, error) { return io.NopCloser(os.Stdin), nil }})
			continue
		}
		fi, err := os.Stat(arg)
		if err != nil {
			return nil, skipped, fmt.Errorf("reading %s: %w", arg, err)
		}
		if !fi.IsDir() {
			if isExcluded(fi) {
				skipped = append(skipped, Skip{Path: arg, Reason: "the store's own file"})
				continue
			}
			inputs = append(inputs, fileInput(arg))
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				skipped = append(skipped, Skip{Path: path, Reason: err.Error(), Unreadable: true})
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if d.Type()&fs.ModeSymlink != 0 {
				skipped = append(skipped, Skip{Path: path, Reason: "a symbolic link: not followed (name its target to read it)"})
				return nil
			}
			if path != arg && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if name == "tmp" && isMaildir(filepath.Dir(path)) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil && isExcluded(fi) {
					skipped = append(skipped, Skip{Path: path, Reason: "the store's own file"})
					return nil
				}
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, skipped, fmt.Errorf("reading folder %s: %w", arg, err)
		}
		sort.Strings(found)
		for _, p := range found {
			inputs = append(inputs, fileInput(p))
		}
	}
	return inputs, skipped, nil
}

func fileInput(path string) Input {
	return Input{Name: path, open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// isMaildir says whether dir holds the cur, new and tmp folders of a
// Maildir.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// Summary counts what a run over many inputs gave.
type Summary struct {
	Inputs      int // inputs read
	Total       int // inputs to read
	Aggregate   int
	Records     int64
	Failure     int
	TLS         int
	Duplicates  int
	Skipped     int
	Quarantined int
	// Reasons counts the quarantined inputs by reason.
	Reasons map[string]int
	Elapsed time.Duration
}

func (s *Summary) add(o Outcome) {
	s.Inputs++
	s.Aggregate += o.Aggregate
	s.Records += o.Records
	s.Failure += o.Failure
	s.TLS += o.TLS
	s.Duplicates += o.Duplicates
	s.Skipped += o.Skipped
	if o.Quarantined {
		s.Quarantined++
		if s.Reasons == nil {
			s.Reasons = map[string]int{}
		}
		s.Reasons[o.Reason]++
	}
}

// FlushEveryInputs is how many inputs Files reads between two Flushes of a
// store that groups its writes (dmarcd.Flusher): it bounds what a crash
// makes a user ingest again, not what is stored.
const FlushEveryInputs = 1_000

// Files ingests the inputs in order. progress, when not nil, is called
// after each input with the summary so far. Each message of an mbox file
// counts as an input (Total grows as they are found). An input too large
// to read is quarantined (its first MaxMessageBytes, with the reason); a
// store failure stops the run. A store that groups its writes is flushed
// every FlushEveryInputs inputs and at the end: when Files returns nil,
// every report it counted is stored.
func (in *Ingester) Files(ctx context.Context, inputs []Input, progress func(Summary)) (Summary, error) {
	start := time.Now()
	sum := Summary{Total: len(inputs)}
	flushed := 0         // inputs whose reports are stored
	var unflushed string // the first input read since the last flush
	flush := func() error {
		f, ok := in.store.(dmarcd.Flusher)
		if !ok || flushed == sum.Inputs {
			return nil
		}
		if err := f.Flush(ctx); err != nil {
			return fmt.Errorf("storing the reports of the last %d inputs, from %s on; ingest them again: %w",
				sum.Inputs-flushed, unflushed, err)
		}
		flushed = sum.Inputs
		return nil
	}
	for _, input := range inputs {
		if err := ctx.Err(); err != nil {
			sum.Elapsed = time.Since(start)
			return sum, err
		}
		messages := 0
		err := in.file(ctx, input, func(out Outcome, name string) error {
			if messages++; messages > 1 {
				sum.Total++ // another message of an mbox
			}
			if flushed == sum.Inputs {
				unflushed = name
			}
			sum.add(out)
			if sum.Inputs-flushed >= FlushEveryInputs {
				if err := flush(); err != nil {
					return err
				}
			}
			if progress != nil {
				sum.Elapsed = time.Since(start)
				progress(sum)
			}
			return nil
		})
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("ingesting %s: %w", input.Name, err)
		}
	}
	err := flush()
	sum.Elapsed = time.Since(start)
	return sum, err
}

// file ingests one input, or each message of an mbox input, and passes
// each outcome, with the name of what gave it, to done.
func (in *Ingester) file(ctx context.Context, input Input, done func(Outcome, string) error) error {
	source := "stdin"
	if input.Name != "-" {
		abs, err := filepath.Abs(input.Name)
		if err != nil {
			abs = input.Name
		}
		source = "file:" + abs
	}
	rc, err := openCtx(ctx, input)
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, maxMboxLineBytes)
	if first, _ := br.Peek(256); isMbox(first) {
		return in.mbox(ctx, br, source, input.Name, done)
	}
	raw, err := io.ReadAll(io.LimitReader(br, MaxMessageBytes+1))
	if err != nil {
		return err
	}
	out, err := in.input(ctx, raw, len(raw) > MaxMessageBytes, dmarcd.Origin{Source: source})
	if err != nil {
		return err
	}
	return done(out, input.Name)
}

// isMbox says whether an input that starts with first is an mbox file: its
// first line is a separator.
func isMbox(first []byte) bool {
	line, _, _ := bytes.Cut(first, []byte("\n"))
	return isMboxSeparator(bytes.TrimRight(line, "\r"))
}

// mbox ingests the messages of an mbox file one at a time; the source of
// message N (from 1) is SOURCE;message=N.
func (in *Ingester) mbox(ctx context.Context, r io.Reader, source, name string, done func(Outcome, string) error) error {
	m := newMboxReader(r, MaxMessageBytes)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, truncated, err := m.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		suffix := ";message=" + strconv.Itoa(m.n)
		out, err := in.input(ctx, raw, truncated, dmarcd.Origin{Source: source + suffix})
		if err != nil {
			return err
		}
		if err := done(out, name+suffix); err != nil {
			return err
		}
	}
}

// input ingests the bytes of one input; one that was longer than
// MaxMessageBytes (raw holds its first bytes) is quarantined.
func (in *Ingester) input(ctx context.Context, raw []byte, tooLong bool, o dmarcd.Origin) (Outcome, error) {
	o.ReceivedAt = in.opts.Now().UTC()
	if tooLong {
		reason := fmt.Sprintf("input larger than MaxMessageBytes (%d); its first %d bytes are kept", MaxMessageBytes, MaxMessageBytes)
		err := in.store.Quarantine(ctx, dmarcd.Quarantined{Origin: o, Reason: reason, Raw: raw[:min(len(raw), MaxMessageBytes)]})
		return Outcome{Quarantined: true, Reason: reason}, err
	}
	return in.Ingest(ctx, raw, o)
}

// openCtx opens an input so that ctx ending stops a wait on it: opening a
// FIFO waits for a writer, and reading standard input or a FIFO waits for
// data, neither of which a signal interrupts. Regular files are read as
// they are.
func openCtx(ctx context.Context, input Input) (io.ReadCloser, error) {
	type opened struct {
		rc  io.ReadCloser
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		rc, err := input.open()
		ch <- opened{rc, err}
	}()
	var o opened
	select {
	case <-ctx.Done():
		go func() { // the open may still return: close what it gives
			if o := <-ch; o.err == nil {
				o.rc.Close()
			}
		}()
		return nil, ctx.Err()
	case o = <-ch:
	}
	if o.err != nil {
		return nil, o.err
	}
	if f, ok := o.rc.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return f, nil
		}
	}
	return &ctxReader{ctx: ctx, rc: o.rc}, nil
}

// ctxReader reads from a stream that may wait for ever (standard input, a
// FIFO) and gives up when ctx ends: each Read runs apart, into a buffer of
// its own, and a Read cut short by ctx leaves it to finish alone.
type ctxReader struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, len(p))
	ch := make(chan result, 1)
	go func() {
		n, err := c.rc.Read(buf)
		ch <- result{n, err}
	}()
	select {
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	case r := <-ch:
		copy(p, buf[:r.n])
		return r.n, r.err
	}
}

func (c *ctxReader) Close() error { return c.rc.Close() }
