package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the numbers were measured.
type Machine struct {
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	MemoryGB float64           `json:"memory_gb"`
	Disk     string            `json:"disk"`
	Kernel   string            `json:"kernel"`
	OS       string            `json:"os"`
	Versions map[string]string `json:"versions"`
}

func machine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Versions: map[string]string{}}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.CPU = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGB = kb / (1 << 20)
			}
		}
	}
	m.Disk = disk(dir)
	m.Kernel = first(out("uname", "-r"))
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if v, err := os.ReadFile("/etc/debian_version"); err == nil {
		m.OS += " (" + strings.TrimSpace(string(v)) + ")"
	}
	v := m.Versions
	v["go"] = first(out("go", "env", "GOVERSION"))
	for _, mod := range []string{"modernc.org/sqlite", "github.com/ClickHouse/clickhouse-go/v2", "github.com/emersion/go-imap/v2"} {
		v[mod] = first(out("go", "list", "-m", "-f", "{{.Version}}", mod))
	}
	for _, pkg := range []string{"clickhouse-server", "dovecot-imapd", "dmarc-cat", "libmail-dmarc-perl", "dmarcts-report-parser", "libxml-libxml-perl", "libxml-simple-perl", "libmime-tools-perl", "libxml2", "perl"} {
		v[pkg] = first(out("dpkg-query", "-W", "-f", "${Version}", pkg))
	}
	return m
}

// disk names the file system that holds dir: its device, type and size.
func disk(dir string) string {
	var st syscall.Statfs_t
	size := ""
	if syscall.Statfs(dir, &st) == nil {
		size = strconv.FormatInt(int64(st.Blocks)*st.Bsize>>30, 10) + " GB"
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return size
	}
	defer f.Close()
	best, desc := "", size
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		if (dir == fs[1] || strings.HasPrefix(dir, strings.TrimSuffix(fs[1], "/")+"/")) && len(fs[1]) > len(best) {
			best = fs[1]
			desc = fs[2] + " on " + fs[0] + " (" + fs[1] + "), " + size
		}
	}
	if dev := strings.TrimPrefix(strings.Fields(desc + " x")[2], "/dev/"); dev != "" {
		if rot, err := os.ReadFile(filepath.Join("/sys/block", dev, "queue/rotational")); err == nil {
			if strings.TrimSpace(string(rot)) == "0" {
				desc += ", non-rotational"
			} else {
				desc += ", rotational"
			}
		}
	}
	return desc
}

func out(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func first(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// QuietNote records the load and the other heavy processes at a point of
// the run: numbers measured beside other jobs are slower than they would
// be on a quiet machine.
type QuietNote struct {
	When   string   `json:"when"`
	At     string   `json:"at"`
	Load   string   `json:"load_average"`
	Others []string `json:"other_heavy_processes,omitempty"`
}

// heavy are the processes that load this machine besides the benchmark:
// other tests and their servers.
var heavy = []string{"go test", ".test ", "clickhouse-server", "chromium", "dovecot", "postfix", "go build", "compile"}

func quietCheck(when string) QuietNote {
	q := QuietNote{When: when, At: time.Now().Format(time.RFC3339)}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		q.Load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == os.Getppid() || descends(pid, self) {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")) + " "
		for _, h := range heavy {
			if strings.Contains(line, h) {
				if len(line) > 120 {
					line = line[:120] + "..."
				}
				q.Others = append(q.Others, e.Name()+": "+strings.TrimSpace(line))
				break
			}
		}
	}
	return q
}

// descends says whether pid is a descendant of ancestor: the benchmark's
// own children (parsers, Dovecot, the store benchmarks' ClickHouse) are
// not other jobs.
func descends(pid, ancestor int) bool {
	for range 64 {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return false
		}
		// The parent is the second field after the command, which is in
		// parentheses and may hold spaces.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			return false
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid == ancestor {
			return true
		}
		if ppid <= 1 {
			return false
		}
		pid = ppid
	}
	return false
}

// watch samples the load and the other heavy processes every interval
// until stop is closed, and returns what it saw: the highest 1-minute load
// average and each other heavy process once.
func watch(interval time.Duration, stop <-chan struct{}) <-chan QuietNote {
	out := make(chan QuietNote, 1)
	go func() {
		note := QuietNote{When: "during the run (sampled every " + interval.String() + ")"}
		seen := map[string]bool{}
		ticks := map[int]int64{}
		busy(ticks, interval)
		var maxLoad float64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				note.At = time.Now().Format(time.RFC3339)
				note.Load = "at most " + strconv.FormatFloat(maxLoad, 'f', 2, 64) + " (1 minute)"
				out <- note
				return
			case <-t.C:
				// Any other process that used more than a fifth of a core
				// since the last sample, whatever its name.
				for pid, cmd := range busy(ticks, interval) {
					if !seen[cmd] {
						seen[cmd] = true
						note.Others = append(note.Others, time.Now().Format("15:04:05")+" "+strconv.Itoa(pid)+": "+cmd)
					}
				}
				q := quietCheck("")
				if f := strings.Fields(q.Load); len(f) > 0 {
					l, _ := strconv.ParseFloat(f[0], 64)
					maxLoad = max(maxLoad, l)
				}
				for _, o := range q.Others {
					// pid: command; one entry per command line.
					cmd := o[strings.Index(o, ":")+1:]
					if !seen[cmd] {
						seen[cmd] = true
						note.Others = append(note.Others, time.Now().Format("15:04:05")+" "+o)
					}
				}
			}
		}
	}()
	return out
}

// busy returns the processes, other than the benchmark and its
// descendants, that used more than a fifth of a core over interval, from
// their CPU ticks (utime + stime, 100 a second), which it keeps in ticks
// from one call to the next.
func busy(ticks map[int]int64, interval time.Duration) map[int]string {
	out := map[int]string{}
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	now := map[int]int64{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		now[pid] = ut + st
		if prev, ok := ticks[pid]; ok && float64(now[pid]-prev)/100 > interval.Seconds()/5 && !descends(pid, self) {
			name := s[strings.IndexByte(s, '(')+1 : i]
			if cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(cmd) > 0 {
				name = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
			}
			if len(name) > 120 {
				name = name[:120] + "..."
			}
			out[pid] = fmt.Sprintf("%s (%.0f%% of a core)", name, 100*float64(now[pid]-prev)/100/interval.Seconds())
		}
	}
	clear(ticks)
	for k, v := range now {
		ticks[k] = v
	}
	return out
}
