# dmarcts-report-parser (Debian's package) parsing aggregate reports without
# its MySQL/PostgreSQL database: its own subroutines getXMLFromMessage (.eml:
# MIME::Parser, attachments written to /tmp, gunzip or `unzip -p`),
# getXMLFromZip (.xml.gz, .zip: File::MimeInfo, then the same) and
# getXMLFromXMLString (XML::Simple's XMLin), taken verbatim from
# /usr/sbin/dmarcts-report-parser at run time; storeXMLInDatabase is not
# called. Prints one line of JSON on standard error; run by internal/bench.
use strict;
use warnings;
use MIME::Words qw(decode_mimewords);
use MIME::Parser;
use MIME::Parser::Filer;
use XML::Simple;
use PerlIO::gzip;
use File::MimeInfo;
use Time::HiRes qw(time);

our ($debug, $scriptname) = (0, 'dmarcts-report-parser');
my $src = $ENV{DMARCTS} || '/usr/sbin/dmarcts-report-parser';
open my $sfh, '<', $src or die "$src: $!";
my $code = do { local $/; <$sfh> };
close $sfh;
my ($subs) = $code =~ /(^sub getXMLFromMessage \{.*?)^sub storeXMLInDatabase \{/ms
    or die "$src: its parsing subroutines were not found";
eval "$subs; 1" or die $@;

my ($reports, $records, $xml_bytes, $input_bytes) = (0, 0, 0, 0);
my $t0 = time;
for my $f (@ARGV) {
    $input_bytes += -s $f;
    my $xml;
    if ($f =~ /\.(gz|zip)$/) {
        $xml = getXMLFromZip($f);
    } else {
        open my $fh, '<', $f or die "$f: $!";
        my $c = join('', <$fh>);
        close $fh;
        $xml = $f =~ /\.eml$/ ? getXMLFromMessage($c) : getXMLFromXMLString($c);
    }
    next unless $xml;
    $reports++;
    $xml_bytes += length $xml->{raw_xml};
    my $rec = $xml->{record};
    $records += ref $rec eq 'ARRAY' ? scalar @$rec : ref $rec eq 'HASH' ? 1 : 0;
}
printf STDERR "{\"reports\":%d,\"records\":%d,\"xml_bytes\":%d,\"input_bytes\":%d,\"seconds\":%.6f}\n",
    $reports, $records, $xml_bytes, $input_bytes, time - $t0;
