package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run is one run of a program: its wall time from fork to exit, the
// seconds it reports itself without its start-up (0 when it does not say),
// and its peak resident memory (getrusage of the child: ru_maxrss).
type Run struct {
	Wall   float64 `json:"wall_s"`
	Inner  float64 `json:"inner_s,omitempty"`
	MaxRSS int64   `json:"max_rss_bytes"`
}

// gnuTime is GNU time, which reports the peak memory of the program it
// runs. The harness cannot take it from its own wait4: Go starts children
// with vfork (CLONE_VM), and Linux carries the parent's high-water mark
// into the child's ru_maxrss at exec, so every child would show at least
// the harness's own peak. GNU time forks without CLONE_VM, so what it
// reports (%M) is the program's own. Without it (apt-get install time)
// the rusage of the child is used, an upper bound.
var gnuTime = func() string {
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		return "/usr/bin/time"
	}
	return ""
}()

// proc is the result of one child process.
type proc struct {
	Run
	stdout, stderr []byte
}

// run starts name with args, waits for it and measures it. stdout is kept
// unless discard; stderr is always kept (the tools of the harness write
// their counts there).
func run(name string, args []string, env []string, discard bool) (proc, error) {
	return runMem(name, args, env, discard, false)
}

// runMem is run, and when mem, it measures the peak memory of the program
// through GNU time (about 1 ms more wall time per process).
func runMem(name string, args []string, env []string, discard, mem bool) (proc, error) {
	var memFile string
	if mem && gnuTime != "" {
		f, err := os.CreateTemp("", "bench-mem-")
		if err != nil {
			return proc{}, err
		}
		f.Close()
		memFile = f.Name()
		defer os.Remove(memFile)
		args = append([]string{"-f", "%M", "-o", memFile, name}, args...)
		name = gnuTime
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	if !discard {
		cmd.Stdout = &out
	}
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	p := proc{Run: Run{Wall: time.Since(start).Seconds()}, stdout: out.Bytes(), stderr: errb.Bytes()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
		}
	}
	if memFile != "" {
		// The last line is %M, in kilobytes.
		data, _ := os.ReadFile(memFile)
		lines := strings.Fields(strings.TrimSpace(string(data)))
		if len(lines) > 0 {
			if kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64); err == nil {
				p.MaxRSS = kb << 10
			}
		}
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w\n%s", name, shortArgs(args), err, tail(errb.Bytes(), 2000))
	}
	return p, nil
}

func shortArgs(args []string) string {
	if len(args) > 6 {
		return strings.Join(args[:6], " ") + fmt.Sprintf(" ... (%d arguments)", len(args))
	}
	return strings.Join(args, " ")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// counts is what a parser child prints as its last line of JSON.
type counts struct {
	Reports    int     `json:"reports"`
	Records    int64   `json:"records"`
	XMLBytes   int64   `json:"xml_bytes"`
	InputBytes int64   `json:"input_bytes"`
	Seconds    float64 `json:"seconds"`
}

// lastJSON decodes the last line of b that is a JSON object.
func lastJSON(b []byte, v any) error {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		if len(l) > 0 && l[0] == '{' {
			return json.Unmarshal(l, v)
		}
	}
	return fmt.Errorf("no JSON line in %q", tail(b, 500))
}

// Summary statistics of runs.
func minMedian(xs []float64) (lo, med float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[0], s[len(s)/2]
	}
	return s[0], (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func walls(runs []Run) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.Wall
	}
	return out
}

func inners(runs []Run) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.Inner
	}
	return out
}

func maxRSS(runs []Run) int64 {
	var m int64
	for _, r := range runs {
		m = max(m, r.MaxRSS)
	}
	return m
}
