"""Times `bridge-doctor explain --unit UNIT --journal-dir DIR` (a 50 MiB
journal window) against `bridge-doctor explain FILE` on the same text, and
journalctl alone reading that window (what no reader of the journal can
beat), best of three runs each after a warm-up; prints times and ratios.
The journal is written by systemd-journal-remote from the export format,
one entry per line of LOG, a millisecond apart."""
import os
import subprocess
import sys
import tempfile
import time

doctor, log, journal = sys.argv[1], sys.argv[2], sys.argv[3]
unit = "mautrix-telegram.service"


def write_journal():
    os.makedirs(journal, exist_ok=True)
    remote = subprocess.Popen(
        ["/lib/systemd/systemd-journal-remote", f"--output={journal}/bench.journal", "-"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    start = 1764760000000000
    with open(log, "rb") as lines:
        for i, line in enumerate(lines):
            remote.stdin.write(
                b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                b"_HOSTNAME=matrix\n_SYSTEMD_UNIT=%s\nSYSLOG_IDENTIFIER=mautrix-telegram\nMESSAGE=%s\n\n"
                % (start + i * 1000, i + 1, unit.encode(), line.rstrip(b"\n")))
    remote.stdin.close()
    remote.wait()


def timed(command):
    # Output to a real file, as bench_compare.py does.
    times = []
    with tempfile.TemporaryFile() as sink:
        for _ in range(4):  # the first run warms the page cache and is dropped
            sink.seek(0)
            start = time.perf_counter()
            subprocess.run(command, stdout=sink, check=False)
            times.append(time.perf_counter() - start)
    return min(times[1:])


def own_peak(command):
    """The doctor's own peak resident memory (VmHWM), polled while it runs:
    GNU time would report journalctl's, whose mapped journal files count."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    return peak


if not os.path.isdir(journal):
    write_journal()
size = os.path.getsize(log) / 1048576
journal_size = sum(os.path.getsize(os.path.join(journal, f)) for f in os.listdir(journal)) / 1048576
window = ["--journal-dir", journal, "--unit", unit]
file_time = timed([doctor, "explain", "--format", "json", log])
unit_time = timed([doctor, "explain", "--format", "json"] + window)
journalctl = ["journalctl", "--directory", journal, "--unit", unit, "--reverse", "--no-pager", "--quiet"]
export_time = timed(journalctl + ["--output=export", "--output-fields=MESSAGE"])
cat_time = timed(journalctl + ["--output=cat"])
json_time = timed(journalctl + ["--output=json", "--output-fields=MESSAGE"])
short_time = timed(journalctl + ["--output=short-iso-precise"])
peak_kb = own_peak([doctor, "explain", "--format", "json"] + window)
print(f"text: {size:.0f} MiB in a file and in {journal_size:.0f} MiB of journal files")
print(f"explain FILE                   : {file_time:.2f} s")
print(f"explain --unit (50 MiB window) : {unit_time:.2f} s")
print(f"ratio unit/file: {unit_time / file_time:.2f} (goal: 1.0)")
print(f"journalctl alone, export (what explain --unit reads): {export_time:.2f} s")
print(f"journalctl alone, cat (no times, not enough)        : {cat_time:.2f} s")
print(f"journalctl alone, json                              : {json_time:.2f} s")
print(f"journalctl alone, short-iso-precise (host, identifier and indents to undo): {short_time:.2f} s")
print(f"explain --unit beyond journalctl export: {unit_time - export_time:+.2f} s")
print(f"explain --unit peak memory (the doctor's own): {peak_kb / 1024:.0f} MiB")
