package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the daemon's configuration file (TOML). dmarcd.example.toml in
// the repository documents every key. Unknown keys are refused, so that a
// misspelt setting is an error and not a silent default.
type Config struct {
	// Store is the DSN of the store: a SQLite file path or sqlite:PATH.
	Store   string        `toml:"store"`
	Log     LogConfig     `toml:"log"`
	Ingest  IngestConfig  `toml:"ingest"`
	Metrics MetricsConfig `toml:"metrics"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// IngestConfig sets what is kept of reports.
type IngestConfig struct {
	// KeepFailureBody keeps the body of the reported message of failure
	// reports; by default only its header is kept (personal data).
	KeepFailureBody bool `toml:"keep_failure_body"`
}

// MetricsConfig sets the Prometheus endpoint of the daemon.
type MetricsConfig struct {
	// Listen is the address of /metrics, empty for none.
	Listen string `toml:"listen"`
}

// defaultConfig is the configuration without a file.
func defaultConfig() Config {
	return Config{
		Store: "dmarcd.db",
		Log:   LogConfig{Level: "info", Format: "text"},
	}
}

// loadConfig reads path over the defaults. An empty path gives the
// defaults.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	md, err := toml.DecodeFile(path, &cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("config file %s does not exist", path)
	}
	if err != nil {
		return cfg, fmt.Errorf("config file %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config file %s: unknown keys: %s (see dmarcd.example.toml)", path, strings.Join(keys, ", "))
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	return nil
}
