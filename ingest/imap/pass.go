package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/dmarcd/dmarcd"
)

// pass reads every configured folder once. It stops between messages when
// ctx ends, after filing the messages done.
func (cn *conn) pass(ctx context.Context, sum *Summary) error {
	for _, f := range cn.p.mb.Folders {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := cn.folder(ctx, f, sum); err != nil {
			return err
		}
	}
	return nil
}

// folder reads one folder: every message in it, in batches.
func (cn *conn) folder(ctx context.Context, folder string, sum *Summary) error {
	cn.arm(CommandTimeout)
	defer cn.disarm()
	sel, err := cn.c.Select(folder, nil).Wait()
	if err != nil {
		return cn.fail("selecting folder "+folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	// ALL, not UNSEEN: a message stays in the folder until its reports are
	// stored, whatever its flags (a person may have read it).
	res, err := cn.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return cn.fail("searching folder "+folder, err)
	}
	uids := slices.DeleteFunc(res.AllUIDs(), func(uid imap.UID) bool { return cn.p.isLeft(folder, sel.UIDValidity, uid) })
	if len(uids) == 0 {
		return nil
	}
	slices.Sort(uids)
	prog := &progress{cn: cn, folder: folder, total: len(uids), start: time.Now()}
	for len(uids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(uids) < prog.total && !cn.p.holdLease(ctx) {
			return errLeaseLost
		}
		n := min(len(uids), cn.p.mb.BatchSize)
		if err := cn.batch(ctx, folder, sel.UIDValidity, uids[:n], sum, prog); err != nil {
			return err
		}
		uids = uids[n:]
	}
	prog.end()
	return nil
}

// filing is where the messages of a batch go once ingested.
type filing struct {
	archive []imap.UID // every report stored: archive (or delete)
	invalid []imap.UID // no parseable report: invalid folder
}

// batch ingests a batch of messages and files them. A message is filed
// only after its reports were committed, and flushed where the store
// groups its writes; when the batch stops early (the store failed, ctx
// ended, the connection broke) the messages done are still filed when the
// connection allows.
func (cn *conn) batch(ctx context.Context, folder string, uidValidity uint32, uids []imap.UID, sum *Summary, prog *progress) error {
	var fl filing
	runErr := cn.ingestBatch(ctx, folder, uidValidity, uids, &fl, sum, prog)
	if err := cn.flush(ctx, folder, &fl); err != nil && runErr == nil {
		runErr = err
	}
	if err := cn.file(folder, &fl, sum); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// flush makes the reports of the messages to archive durable, in a store
// that groups its writes (dmarcd.Flusher). When it fails they stay in the
// folder, to be read again; the messages to the invalid folder do not
// wait for it: their quarantine is written at once.
func (cn *conn) flush(ctx context.Context, folder string, fl *filing) error {
	f, ok := cn.p.store.(dmarcd.Flusher)
	if !ok || len(fl.archive) == 0 {
		return nil
	}
	cn.disarm() // a store's write is no IMAP command
	// As in ingest: a graceful stop must not turn into a store failure.
	if err := f.Flush(context.WithoutCancel(ctx)); err != nil {
		cn.p.log.Warn("imap store failed; the messages stay in their folder and are read again later",
			"folder", folder, "messages", len(fl.archive), "err", err)
		n := len(fl.archive)
		fl.archive = nil
		return kinded(ErrStore, "storing the reports of %d messages of %s: %w", n, folder, err)
	}
	return nil
}

func (cn *conn) ingestBatch(ctx context.Context, folder string, uidValidity uint32, uids []imap.UID, fl *filing, sum *Summary, prog *progress) error {
	// Sizes first, so that a message too large is never fetched.
	cn.arm(CommandTimeout)
	sized, err := cn.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil && !expungeIssued(err) {
		return cn.fail("fetching message sizes in "+folder, err)
	}
	sizes := make(map[imap.UID]int64, len(sized))
	for _, m := range sized {
		sizes[m.UID] = m.RFC822Size
	}
	var fit []imap.UID
	for _, uid := range uids {
		size, ok := sizes[uid]
		if !ok {
			continue // gone: another client moved or expunged it
		}
		if size > cn.p.opts.MaxMessageBytes {
			if err := cn.oversize(ctx, folder, uidValidity, uid, size, sum); err != nil {
				return err
			}
			fl.invalid = append(fl.invalid, uid)
			prog.step(sum)
			continue
		}
		fit = append(fit, uid)
	}
	if len(fit) == 0 || ctx.Err() != nil {
		return ctx.Err()
	}

	// Then the messages, streamed: one is in memory at a time.
	if cn.p.beforeBodies != nil {
		cn.p.beforeBodies(folder, fit)
	}
	cn.arm(CommandTimeout)
	cmd := cn.c.Fetch(imap.UIDSetNum(fit...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	var runErr error
	vanished := 0
	for {
		cn.arm(CommandTimeout)
		msg := cmd.Next()
		if msg == nil {
			break
		}
		uid, raw, size, err := cn.readMessage(msg)
		if err != nil {
			runErr = cn.fail("reading a message of "+folder, err)
			break
		}
		if uid == 0 || raw == nil {
			continue // not the data asked for
		}
		if len(raw) == 0 && sizes[uid] > 0 {
			// The server had it when it told its size, and gives it
			// empty or NIL now: another client moved or expunged it
			// meanwhile (RFC 9051 §7.5.2 lets a server answer so). It
			// is gone from here, not lost; nothing to read or file.
			vanished++
			continue
		}
		cn.disarm()
		var to string
		if size > cn.p.opts.MaxMessageBytes {
			// The server's RFC822.SIZE was wrong.
			err = cn.quarantineOversize(ctx, folder, uidValidity, uid, size, raw, sum)
			to = MovedInvalid
		} else {
			to, err = cn.ingest(ctx, folder, uidValidity, uid, raw, sum)
		}
		if err != nil {
			runErr = err
			break
		}
		switch to {
		case movedLeft:
		case MovedInvalid:
			fl.invalid = append(fl.invalid, uid)
		default:
			fl.archive = append(fl.archive, uid)
		}
		prog.step(sum)
		if cn.p.afterMessage != nil {
			cn.p.afterMessage(folder, uid)
		}
		if ctx.Err() != nil {
			break // graceful stop: the message in hand is done
		}
	}
	// Close reads what is left of the FETCH when the loop stopped early.
	cn.arm(CommandTimeout)
	if vanished > 0 {
		cn.p.log.Info("imap messages vanished during the batch (another client moved them); the rest is done", "folder", folder, "vanished", vanished)
	}
	switch err := cmd.Close(); {
	case err == nil || runErr != nil:
	case expungeIssued(err):
		// Another client moved or deleted messages of the batch while it
		// was read (NO [EXPUNGEISSUED], RFC 5530): they are gone from
		// here, not lost, and the others are done.
		cn.p.log.Info("imap messages vanished during the batch (another client moved them); the rest is done", "folder", folder, "err", err)
	default:
		runErr = cn.fail("fetching messages of "+folder, err)
	}
	if runErr == nil {
		runErr = ctx.Err()
	}
	return runErr
}

// readMessage reads the UID and the body of a FETCH response. It keeps at
// most MaxMessageBytes of the body and returns the size seen.
func (cn *conn) readMessage(msg *imapclient.FetchMessageData) (imap.UID, []byte, int64, error) {
	var uid imap.UID
	var raw []byte
	var size int64
	for {
		item := msg.Next()
		if item == nil {
			return uid, raw, size, nil
		}
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = item.UID
		case imapclient.FetchItemDataBodySection:
			if item.Literal == nil {
				raw = []byte{}
				continue
			}
			var b bytes.Buffer
			b.Grow(int(min(item.Literal.Size(), cn.p.opts.MaxMessageBytes)))
			n, err := io.Copy(&b, io.LimitReader(item.Literal, cn.p.opts.MaxMessageBytes))
			if err != nil {
				return uid, nil, 0, err
			}
			rest, err := io.Copy(io.Discard, item.Literal)
			if err != nil {
				return uid, nil, 0, err
			}
			raw, size = b.Bytes(), n+rest
			cn.arm(CommandTimeout)
		}
	}
}

// ingest stores the reports of one message and says where it goes.
func (cn *conn) ingest(ctx context.Context, folder string, uidValidity uint32, uid imap.UID, raw []byte, sum *Summary) (string, error) {
	p := cn.p
	source := p.source(folder, uidValidity, uid)
	p.m.MessagesSeen.WithLabelValues(p.mb.Name).Inc()
	sum.Messages++
	// The message in hand is finished even when ctx ends: a graceful stop
	// must not turn into a store failure.
	out, err := p.in.Ingest(context.WithoutCancel(ctx), raw, dmarcd.Origin{Source: source})
	if err != nil {
		p.log.Warn("imap store failed; the message stays in its folder and is read again later", "source", source, "err", err)
		return "", kinded(ErrStore, "storing the reports of %s: %w", source, err)
	}
	sum.Aggregate += out.Aggregate
	sum.Records += out.Records
	sum.Failure += out.Failure
	sum.TLS += out.TLS
	sum.Duplicates += out.Duplicates
	sum.Skipped += out.Skipped
	m, name := p.m, p.mb.Name
	m.ReportsStored.WithLabelValues(name, "aggregate").Add(float64(out.Aggregate))
	m.ReportsStored.WithLabelValues(name, "failure").Add(float64(out.Failure))
	m.ReportsStored.WithLabelValues(name, "tls").Add(float64(out.TLS))
	m.ReportsSkipped.WithLabelValues(name).Add(float64(out.Skipped))
	m.Duplicates.WithLabelValues(name).Add(float64(out.Duplicates))
	if out.Quarantined {
		sum.Quarantined++
		m.Quarantined.WithLabelValues(name).Inc()
	}
	to := MovedArchive
	if out.NotReport && p.mb.NonReports == NonReportsLeave {
		p.leave(folder, uidValidity, uid)
		sum.Left++
		p.log.Debug("imap message without a report left where it is", "source", source)
		return movedLeft, nil
	}
	if out.Reports() == 0 {
		// Nothing parseable: the bytes and the reason are in the
		// quarantine.
		to = MovedInvalid
	}
	p.log.Debug("imap message ingested", "source", source, "aggregate", out.Aggregate, "failure", out.Failure,
		"duplicates", out.Duplicates, "skipped", out.Skipped, "quarantined", out.Quarantined, "to", to)
	return to, nil
}

// oversize quarantines a record of a message too large to fetch: its
// header and the reason.
func (cn *conn) oversize(ctx context.Context, folder string, uidValidity uint32, uid imap.UID, size int64, sum *Summary) error {
	cn.arm(CommandTimeout)
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true,
		Partial: &imap.SectionPartial{Offset: 0, Size: MaxOversizeHeaderBytes}}
	msgs, err := cn.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	cn.disarm()
	if err != nil {
		return cn.fail("fetching the header of a large message in "+folder, err)
	}
	var header []byte
	for _, m := range msgs {
		for _, s := range m.BodySection {
			header = s.Bytes
		}
	}
	return cn.quarantineOversize(ctx, folder, uidValidity, uid, size, header, sum)
}

func (cn *conn) quarantineOversize(ctx context.Context, folder string, uidValidity uint32, uid imap.UID, size int64, kept []byte, sum *Summary) error {
	p := cn.p
	source := p.source(folder, uidValidity, uid)
	reason := fmt.Sprintf("message of %d bytes is larger than MaxMessageBytes (%d); not read, its header is kept", size, p.opts.MaxMessageBytes)
	if len(kept) > MaxOversizeHeaderBytes {
		kept = kept[:MaxOversizeHeaderBytes]
		reason = fmt.Sprintf("message of %d bytes is larger than MaxMessageBytes (%d); not read, its first %d bytes are kept", size, p.opts.MaxMessageBytes, len(kept))
	}
	if len(kept) == 0 {
		kept = []byte(source) // the quarantine keeps each distinct content once
	}
	p.m.MessagesSeen.WithLabelValues(p.mb.Name).Inc()
	sum.Messages++
	q := dmarcd.Quarantined{
		Origin: dmarcd.Origin{Source: source, MessageID: headerMessageID(kept), ReceivedAt: p.now().UTC()},
		Reason: reason,
		Raw:    kept,
	}
	if err := p.store.Quarantine(context.WithoutCancel(ctx), q); err != nil {
		p.log.Warn("imap store failed; the message stays in its folder and is read again later", "source", source, "err", err)
		return kinded(ErrStore, "quarantining %s: %w", source, err)
	}
	sum.Quarantined++
	p.m.Quarantined.WithLabelValues(p.mb.Name).Inc()
	p.log.Warn("imap message too large; its header is quarantined and it moves to the invalid folder", "source", source, "bytes", size, "limit", p.opts.MaxMessageBytes)
	return nil
}

// file moves the messages of a batch to where they go: invalid ones to the
// invalid folder, the others to the archive or away (delete_after).
func (cn *conn) file(folder string, fl *filing, sum *Summary) error {
	mb, m := cn.p.mb, cn.p.m
	if len(fl.invalid) > 0 {
		if err := cn.move(fl.invalid, mb.InvalidFolder); err != nil {
			return cn.fail(fmt.Sprintf("moving %d messages from %s to %s", len(fl.invalid), folder, mb.InvalidFolder), err)
		}
		sum.Invalid += len(fl.invalid)
		m.MessagesMoved.WithLabelValues(mb.Name, MovedInvalid).Add(float64(len(fl.invalid)))
		cn.p.log.Debug("imap messages moved", "folder", folder, "to", mb.InvalidFolder, "count", len(fl.invalid))
	}
	if len(fl.archive) == 0 {
		return nil
	}
	if mb.DeleteAfter {
		if err := cn.delete(fl.archive); err != nil {
			return cn.fail(fmt.Sprintf("deleting %d messages from %s", len(fl.archive), folder), err)
		}
		sum.Deleted += len(fl.archive)
		m.MessagesMoved.WithLabelValues(mb.Name, MovedDeleted).Add(float64(len(fl.archive)))
		cn.p.log.Debug("imap messages deleted", "folder", folder, "count", len(fl.archive))
		return nil
	}
	if err := cn.move(fl.archive, mb.ArchiveFolder); err != nil {
		return cn.fail(fmt.Sprintf("moving %d messages from %s to %s", len(fl.archive), folder, mb.ArchiveFolder), err)
	}
	sum.Archived += len(fl.archive)
	m.MessagesMoved.WithLabelValues(mb.Name, MovedArchive).Add(float64(len(fl.archive)))
	cn.p.log.Debug("imap messages moved", "folder", folder, "to", mb.ArchiveFolder, "count", len(fl.archive))
	return nil
}

// move moves messages with UID MOVE (RFC 6851), or where the server lacks
// it copies them and then deletes them. imapclient's own fallback sends
// COPY, STORE and EXPUNGE at once, so that a failed COPY would still
// delete: here each step waits for the previous one.
//
// A message another client expunged meanwhile makes the server refuse with
// NO [EXPUNGEISSUED]: a NOOP brings the session's view up to date, and the
// move is tried once more for the messages that are left.
func (cn *conn) move(uids []imap.UID, dest string) error {
	cn.arm(CommandTimeout)
	defer cn.disarm()
	set := imap.UIDSetNum(uids...)
	if cn.c.Caps().Has(imap.CapMove) {
		_, err := cn.c.Move(set, dest).Wait()
		if expungeIssued(err) {
			cn.p.log.Info("imap messages vanished before the move (another client moved them); moving the rest", "to", dest)
			if err := cn.c.Noop().Wait(); err != nil {
				return err
			}
			_, err = cn.c.Move(set, dest).Wait()
		}
		return err
	}
	if _, err := cn.c.Copy(set, dest).Wait(); err != nil {
		return err
	}
	return cn.delete(uids)
}

// delete flags messages \Deleted and expunges them: only them with UID
// EXPUNGE (RFC 4315 §2.1); a server without UIDPLUS only offers EXPUNGE,
// which also removes whatever else is flagged \Deleted in the folder, as
// any mail client's expunge does.
func (cn *conn) delete(uids []imap.UID) error {
	cn.arm(CommandTimeout)
	defer cn.disarm()
	set := imap.UIDSetNum(uids...)
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := cn.c.Store(set, store, nil).Close(); err != nil {
		return err
	}
	if cn.c.Caps().Has(imap.CapUIDPlus) {
		return cn.c.UIDExpunge(set).Close()
	}
	return cn.c.Expunge().Close()
}

// progress logs where a large folder is, every ProgressEvery messages.
type progress struct {
	cn     *conn
	folder string
	total  int
	done   int
	start  time.Time
}

func (pr *progress) step(sum *Summary) {
	pr.done++
	every := pr.cn.p.opts.ProgressEvery
	if pr.total <= every || pr.done%every != 0 || pr.done == pr.total {
		return
	}
	elapsed := time.Since(pr.start)
	rate := float64(pr.done) / elapsed.Seconds()
	eta := time.Duration(float64(pr.total-pr.done) / rate * float64(time.Second)).Round(time.Second)
	pr.cn.p.log.Info("imap progress", append([]any{"folder", pr.folder, "done", pr.done, "total", pr.total,
		"percent", 100 * pr.done / pr.total, "per_second", fmt.Sprintf("%.1f", rate), "eta", eta}, sum.logAttrs()...)...)
}

func (pr *progress) end() {
	if pr.total > pr.cn.p.opts.ProgressEvery {
		pr.cn.p.log.Info("imap folder done", "folder", pr.folder, "messages", pr.done, "elapsed", time.Since(pr.start).Round(time.Millisecond))
	}
}

// headerMessageID returns the Message-ID of a message header.
func headerMessageID(header []byte) string {
	msg, err := mail.ReadMessage(bufio.NewReader(io.MultiReader(bytes.NewReader(header), strings.NewReader("\r\n"))))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(msg.Header.Get("Message-Id"))
}

// codeExpungeIssued is the response code of RFC 5530 §3: a command named
// messages that another session expunged.
const codeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED"

// expungeIssued says whether err is the server's NO [EXPUNGEISSUED].
func expungeIssued(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == codeExpungeIssued
}

// movedLeft: the message stays in its folder (non_reports = "leave").
const movedLeft = "left"

func (p *Poller) isLeft(folder string, uidValidity uint32, uid imap.UID) bool {
	p.leftMu.Lock()
	defer p.leftMu.Unlock()
	return p.left[p.source(folder, uidValidity, uid)]
}

func (p *Poller) leave(folder string, uidValidity uint32, uid imap.UID) {
	p.leftMu.Lock()
	defer p.leftMu.Unlock()
	p.left[p.source(folder, uidValidity, uid)] = true
}
