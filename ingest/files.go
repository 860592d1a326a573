package ingest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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
func Expand(args []string) ([]Input, error) {
	var inputs []Input
	for _, arg := range args {
		if arg == "-" {
			inputs = append(inputs, Input{Name: "-", open: func() (io.ReadCloser, error) { return io.NopCloser(os.Stdin), nil }})
			continue
		}
		fi, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", arg, err)
		}
		if !fi.IsDir() {
			inputs = append(inputs, fileInput(arg))
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
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
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading folder %s: %w", arg, err)
		}
		sort.Strings(found)
		for _, p := range found {
			inputs = append(inputs, fileInput(p))
		}
	}
	return inputs, nil
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
// after each input with the summary so far. An input too large to read is
// quarantined (its first MaxMessageBytes, with the reason); a store failure
// stops the run. A store that groups its writes is flushed every
// FlushEveryInputs inputs and at the end: when Files returns nil, every
// report it counted is stored.
func (in *Ingester) Files(ctx context.Context, inputs []Input, progress func(Summary)) (Summary, error) {
	start := time.Now()
	sum := Summary{Total: len(inputs)}
	flushed := 0 // inputs whose reports are stored
	flush := func() error {
		f, ok := in.store.(dmarcd.Flusher)
		if !ok || flushed == sum.Inputs {
			return nil
		}
		if err := f.Flush(ctx); err != nil {
			return fmt.Errorf("storing the reports of inputs %d to %d (%s to %s); ingest them again: %w",
				flushed+1, sum.Inputs, inputs[flushed].Name, inputs[sum.Inputs-1].Name, err)
		}
		flushed = sum.Inputs
		return nil
	}
	for _, input := range inputs {
		if err := ctx.Err(); err != nil {
			sum.Elapsed = time.Since(start)
			return sum, err
		}
		out, err := in.file(ctx, input)
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("ingesting %s: %w", input.Name, err)
		}
		sum.add(out)
		if sum.Inputs-flushed >= FlushEveryInputs {
			if err := flush(); err != nil {
				sum.Elapsed = time.Since(start)
				return sum, err
			}
		}
		if progress != nil {
			sum.Elapsed = time.Since(start)
			progress(sum)
		}
	}
	err := flush()
	sum.Elapsed = time.Since(start)
	return sum, err
}

func (in *Ingester) file(ctx context.Context, input Input) (Outcome, error) {
	source := "stdin"
	if input.Name != "-" {
		abs, err := filepath.Abs(input.Name)
		if err != nil {
			abs = input.Name
		}
		source = "file:" + abs
	}
	o := dmarcd.Origin{Source: source, ReceivedAt: in.opts.Now().UTC()}
	rc, err := input.open()
	if err != nil {
		return Outcome{}, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, MaxMessageBytes+1))
	if err != nil {
		return Outcome{}, err
	}
	if len(raw) > MaxMessageBytes {
		reason := fmt.Sprintf("input larger than MaxMessageBytes (%d); its first %d bytes are kept", MaxMessageBytes, MaxMessageBytes)
		err := in.store.Quarantine(ctx, dmarcd.Quarantined{Origin: o, Reason: reason, Raw: raw[:MaxMessageBytes]})
		return Outcome{Quarantined: true, Reason: reason}, err
	}
	return in.Ingest(ctx, raw, o)
}
