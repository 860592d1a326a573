# Mail::DMARC (Debian's libmail-dmarc-perl) parsing aggregate reports, as
# its dmarc_receive does, without its SQL store: for a mail (.eml),
# Mail::DMARC::Report::Receive->from_file (Email::MIME, gunzip/unzip,
# XML::LibXML and XPath into Mail::DMARC::Report objects); for a bare,
# gzipped or zipped report, the same decompression and handle_body.
# save_aggregate, which would write to SQL, only counts. Prints one line of
# JSON on standard error; run by internal/bench, not fetched from anywhere.
use strict;
use warnings;
use Mail::DMARC::Report::Receive;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use IO::Uncompress::Unzip qw(unzip $UnzipError);
use Time::HiRes qw(time);

my ($reports, $records, $xml_bytes, $input_bytes) = (0, 0, 0, 0);
{
    no warnings 'redefine';
    *Mail::DMARC::Report::save_aggregate = sub {
        my $self = shift;
        $reports++;
        $records += scalar @{ $self->aggregate->record || [] };
        return 1;
    };
}
my $t0 = time;
my $r = Mail::DMARC::Report::Receive->new;
for my $f (@ARGV) {
    $input_bytes += -s $f;
    if ($f =~ /\.eml$/) { $r->from_file($f); next }
    open my $fh, '<:raw', $f or die "$f: $!";
    my $data = do { local $/; <$fh> };
    close $fh;
    my $xml;
    if    ($f =~ /\.gz$/)  { gunzip(\$data => \$xml) or die "$f: $GunzipError" }
    elsif ($f =~ /\.zip$/) { unzip(\$data => \$xml) or die "$f: $UnzipError" }
    else                   { $xml = $data }
    $xml_bytes += length $xml;
    $r->report->init();
    $r->handle_body($xml);
}
printf STDERR "{\"reports\":%d,\"records\":%d,\"xml_bytes\":%d,\"input_bytes\":%d,\"seconds\":%.6f}\n",
    $reports, $records, $xml_bytes, $input_bytes, time - $t0;
