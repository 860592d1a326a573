package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/ingest/aggregate"
	imapingest "github.com/dmarcd/dmarcd/ingest/imap"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// Bounds of the /metrics HTTP server.
const (
	metricsReadHeaderTimeout = 10 * time.Second
	metricsShutdownTimeout   = 5 * time.Second
)

type runCmd struct{}

// Run reads every mailbox until SIGINT or SIGTERM, and serves /metrics.
func (runCmd) Run(e *env) error {
	if len(e.cfg.Mailboxes) == 0 && len(e.cfg.Domains) == 0 && e.cfg.Web.AccountsFile == "" {
		return &exitError{code: exitUsage, err: errors.New("run: the config file has no [[mailbox]] to read and no [[domain]] to watch (see dmarcd.example.toml)")}
	}
	st, err := openDaemonStore(e)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := imapingest.NewMetrics(reg)
	if err != nil {
		return err
	}
	if err := registerDecoderMetrics(reg); err != nil {
		return err
	}
	owner := daemonOwner()
	pollers, err := makePollers(e, st, metrics, &owner)
	if err != nil {
		return err
	}

	var srv *http.Server
	if e.cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", e.cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: metricsReadHeaderTimeout}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("metrics server failed", "err", err)
			}
		}()
		e.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	if e.cfg.Web.Listen != "" {
		stopWeb, err := startWeb(e, st)
		if err != nil {
			return err
		}
		defer stopWeb()
	}

	e.log.Info("dmarcd running", "mailboxes", len(pollers), "domains", len(e.cfg.Domains), "store", e.cfg.Store, "owner", owner)
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Go(func() { p.Run(e.ctx) })
	}
	if r, ok := st.(dmarcd.Retainer); ok && e.cfg.RetentionMonths > 0 {
		e.log.Info("retention: dropping the data of months older than the retention",
			"retention_months", e.cfg.RetentionMonths, "every", dmarcd.RetentionInterval)
		wg.Go(func() { dmarcd.RunRetention(e.ctx, r, e.cfg.RetentionMonths, dmarcd.RetentionInterval, e.now, e.log) })
	}
	if as, ok := st.(dmarcd.AlertStore); ok && (len(e.cfg.Domains) > 0 || e.cfg.Web.AccountsFile != "") {
		newEngine := func() (*alert.Engine, error) { return newAlertEngine(e, st, as, pollers) }
		eng, err := newEngine()
		if err != nil {
			return err
		}
		wg.Go(func() { runAlerts(e.ctx, e, eng, newEngine, as, owner) })
		wg.Go(func() {
			if err := runWeekly(e.ctx, e, st, as); err != nil && e.ctx.Err() == nil {
				e.log.Error("weekly schedule stopped", "err", err)
			}
		})
	}
	wg.Wait() // the pollers return when SIGINT or SIGTERM cancels e.ctx

	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	}
	e.log.Info("dmarcd stopped")
	return nil
}

// openDaemonStore opens the configured store. A ClickHouse store logs to
// the daemon's log (its migrations, the partitions retention drops).
func openDaemonStore(e *env) (dmarcd.Store, error) {
	if !strings.HasPrefix(e.cfg.Store, clickhouse.Scheme) {
		return e.openStore()
	}
	house, err := clickhouse.OpenOptions(e.ctx, e.cfg.Store, clickhouse.Options{Logger: e.log})
	if err != nil {
		return nil, err
	}
	return house, nil
}

// registerDecoderMetrics exposes the aggregate decoder's fallbacks to
// encoding/xml (aggregate.Fallbacks) as
// dmarcd_aggregate_decoder_fallbacks_total{reason}, every reason from zero.
func registerDecoderMetrics(reg prometheus.Registerer) error {
	for _, reason := range aggregate.FallbackReasons {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "dmarcd", Subsystem: "aggregate", Name: "decoder_fallbacks_total",
			Help:        "Aggregate reports read by encoding/xml, whole or from some point on, instead of the faster scanner, by reason (charset, doctype, declaration, other).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(aggregate.Fallbacks()[reason]) })
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering the decoder metrics: %w", err)
		}
	}
	return nil
}

// daemonOwner names this daemon in the leases of the store: the host, the
// process and a random part, unique among the daemons sharing it.
func daemonOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}
