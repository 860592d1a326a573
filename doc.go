// Package dmarcd holds the domain of dmarcd: the types every part of the
// daemon speaks, and the small interfaces between the parts. It imports
// nothing of the project; every other package imports it.
//
// What the mailbox providers send, as parsed:
//   - AggregateReport and Record: a DMARC aggregate report (RFC 7489
//     Appendix C, RFC 9990), its records streamed one at a time;
//   - FailureReport: a failure report (RFC 6591, RFC 9991);
//   - TLSReport: an SMTP TLS report (RFC 8460);
//   - Origin and Quarantined: where input came from, and input that could
//     not be parsed, kept with its reason.
//
// What the domain owner decides and dmarcd advises:
//   - SenderDomain, Policy and RolloutStep: the domains that send through
//     us and the steps of a slow DMARC rollout;
//   - Key, KeyState and RotationPolicy: DKIM keys and their life from
//     created to deleted;
//   - Alert, AlertEvent and Notification: what is told to people, and the
//     outbox it leaves through.
//
// The interfaces between the parts: Store (and RecordWriter), with the
// optional Flusher, Retainer, TLSStore and AlertStore, implemented by
// schema/sqlite and schema/clickhouse.
//
// Data flows one way: ingest reads raw bytes from a source and parses them
// into these types, a Store keeps them, analyze reads the store's views,
// and advisor, advisor/alert and dashboards advise, alert and show. The
// signer (signer, signer/keystore) signs outbound mail with the keys.
// ARCHITECTURE.md says which package owns what.
package dmarcd
