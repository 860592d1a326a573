package failure_test

import (
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/dmarcd/dmarcd/ingest/failure"
)

func ExampleParse() {
	msg := strings.ReplaceAll(`From: dmarc-noreply@receiver.example
To: ruf@example.com
Subject: DMARC Failure Report for example.com
Date: Tue, 14 Jan 2025 09:12:40 +0000
Message-ID: <ruf-1@receiver.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: text/plain

A message claiming to be from example.com failed DMARC.

--b
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Receiver/1.0
Version: 1
Source-IP: 192.0.2.1 (mail.example.net)
Reported-Domain: example.com
Auth-Failure: dmarc
Authentication-Results: receiver.example; dmarc=fail header.from=example.com

--b
Content-Type: text/rfc822-headers

From: =?UTF-8?Q?Caf=C3=A9?= <news@example.com>
Subject: Hello
Message-ID: <hello-1@example.com>

--b--
`, "\n", "\r\n")

	if !failure.IsFailureReport([]byte(msg)) {
		log.Fatal("not a failure report")
	}
	r, err := failure.Parse([]byte(msg), failure.Options{})
	if errors.Is(err, failure.ErrNotFailureReport) {
		log.Fatal("not a failure report")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.FeedbackType, r.AuthFailure, r.Domain(), r.SourceIP)
	fmt.Println(r.AuthenticationResults[0])
	fmt.Println(r.OriginalPartType, r.OriginalFrom)
	fmt.Println(len(r.Fields), "fields;", len(r.Tolerations), "tolerations")
	// Output:
	// auth-failure dmarc example.com 192.0.2.1
	// receiver.example; dmarc=fail header.from=example.com
	// text/rfc822-headers Café <news@example.com>
	// 7 fields; 0 tolerations
}

func ExampleIsFailureReport() {
	aggregate := "From: noreply-dmarc-support@google.com\r\n" +
		"Subject: Report domain: example.com Submitter: google.com Report-ID: 42\r\n" +
		"Content-Type: application/gzip\r\n\r\n"
	exim := "From: no-reply@mailgate.example.net\r\n" +
		"Subject: DMARC Forensic Report for example.com from IP 203.0.113.68\r\n" +
		"Content-Type: text/plain\r\n\r\n" +
		"A message claiming to be from you has failed the published DMARC policy.\r\n"
	fmt.Println(failure.IsFailureReport([]byte(aggregate)))
	fmt.Println(failure.IsFailureReport([]byte(exim)))
	// Output:
	// false
	// true
}
