package signer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/d--j/go-milter"
)

// MilterConfig configures the milter front end.
type MilterConfig struct {
	Signer *Signer
	// MaxMessageBytes bounds the message kept for signing; a larger one is
	// handled as unsigned (passed or refused by the Signer's policy).
	MaxMessageBytes int64
	Log             *slog.Logger
	Metrics         *Metrics
}

// Milter is the signing milter: the MTA sends it each message, and at the
// end of the message it adds the DKIM-Signature fields.
type Milter struct {
	cfg    MilterConfig
	server *milter.Server
}

// NewMilter makes a milter; Serve runs it.
func NewMilter(cfg MilterConfig) (*Milter, error) {
	if cfg.Signer == nil {
		return nil, errors.New("signer: the milter needs a signer")
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Milter{cfg: cfg}
	m.server = milter.NewServer(
		milter.WithMilter(func() milter.Milter { return &milterSession{m: m} }),
		milter.WithActions(milter.OptAddHeader|milter.OptChangeHeader),
		// Only the header and body are needed, and no reply before the
		// end of the message. The leading space keeps header fields as
		// written.
		milter.WithProtocols(milter.OptNoConnect|milter.OptNoHelo|milter.OptNoMailFrom|milter.OptNoRcptTo|
			milter.OptNoUnknown|milter.OptNoData|milter.OptNoHeaderReply|milter.OptNoEOHReply|milter.OptNoBodyReply|
			milter.OptHeaderLeadingSpace),
	)
	return m, nil
}

// Serve accepts MTA connections on l until Close.
func (m *Milter) Serve(l net.Listener) error {
	err := m.server.Serve(l)
	if errors.Is(err, milter.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the milter.
func (m *Milter) Close() error { return m.server.Close() }

// Shutdown stops the milter after the messages under way.
func (m *Milter) Shutdown(ctx context.Context) error { return m.server.Shutdown(ctx) }

// milterSession is one MTA connection; it may carry several messages.
type milterSession struct {
	milter.NoOpMilter
	m      *Milter
	msg    bytes.Buffer
	tooBig bool
}

func (s *milterSession) reset() {
	s.msg.Reset()
	s.tooBig = false
}

func (s *milterSession) add(b ...string) {
	for _, p := range b {
		if int64(s.msg.Len()+len(p)) > s.m.cfg.MaxMessageBytes {
			s.tooBig = true
			return
		}
		s.msg.WriteString(p)
	}
}

func (s *milterSession) Header(name, value string, _ milter.Modifier) (*milter.Response, error) {
	if !s.tooBig {
		// With OptHeaderLeadingSpace the value is as written after the
		// colon; folded lines arrive with LF, made CRLF at the end.
		s.add(name, ":", value, "\r\n")
	}
	return milter.RespContinue, nil
}

func (s *milterSession) Headers(_ milter.Modifier) (*milter.Response, error) {
	s.add("\r\n")
	return milter.RespContinue, nil
}

func (s *milterSession) BodyChunk(chunk []byte, _ milter.Modifier) (*milter.Response, error) {
	if !s.tooBig {
		s.add(string(chunk))
	}
	return milter.RespContinue, nil
}

func (s *milterSession) EndOfMessage(m milter.Modifier) (*milter.Response, error) {
	defer s.reset()
	log := s.m.cfg.Log.With("queue_id", m.Get(milter.MacroQueueId))
	var res Result
	if s.tooBig {
		res = s.m.cfg.Signer.unsigned(Result{Reason: fmt.Sprintf("the message is larger than %d bytes", s.m.cfg.MaxMessageBytes)})
	} else {
		var err error
		res, err = s.m.cfg.Signer.Sign(CRLF(s.msg.Bytes()))
		if err != nil {
			log.Error("milter: signing failed", "err", err)
			return milter.RespTempFail, nil
		}
	}
	s.m.cfg.Metrics.count(FrontendMilter, res)
	log = log.With("from_domain", res.FromDomain, "result", res.Outcome)
	if res.Outcome == OutcomeRefused {
		log.Warn("milter: refused unsigned mail", "reason", res.Reason)
		return milter.RejectWithCodeAndReason(550, "5.7.1 No DKIM key for the From domain: "+res.Reason)
	}
	for _, sig := range res.Signatures {
		name, value, _ := strings.Cut(strings.TrimSuffix(sig, "\r\n"), ":")
		// Insert at the top: a signature goes before the fields it signs
		// (RFC 6376 §5.6 asks for it to be prepended).
		if err := m.InsertHeader(0, name, value); err != nil {
			log.Error("milter: adding the signature failed", "err", err)
			return milter.RespTempFail, nil
		}
	}
	log.Info("milter: message handled", "selectors", strings.Join(res.Selectors, ","), "reason", res.Reason)
	return milter.RespAccept, nil
}

func (s *milterSession) Abort(_ milter.Modifier) error {
	s.reset()
	return nil
}
