"""Times `bridge-doctor explain --unit UNIT --journal-dir DIR` (a 50 MiB
journal window) through each of its readers, libsystemd's sd-journal API
and the journalctl fallback (BRIDGE_DOCTOR_JOURNAL_READER=journalctl),
against `bridge-doctor explain FILE` on the same text, and journalctl alone
reading that window, best of three runs each after a warm-up; prints times
and ratios.
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


def timed(command, env=None):
    # Output to a real file, as bench_compare.py does.
    times = []
    with tempfile.TemporaryFile() as sink:
        for _ in range(4):  # the first run warms the page cache and is dropped
            sink.seek(0)
            start = time.perf_counter()
            subprocess.run(command, stdout=sink, check=False, env=env)
            times.append(time.perf_counter() - start)
    return min(times[1:])


def own_peak(command, env=None):
    """The doctor's own peak resident memory (VmHWM), polled while it runs:
    GNU time would report journalctl's, whose mapped journal files count."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
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
through_journalctl = dict(os.environ, BRIDGE_DOCTOR_JOURNAL_READER="journalctl")
through_library = {k: v for k, v in os.environ.items() if k != "BRIDGE_DOCTOR_JOURNAL_READER"}
unit_command = [doctor, "explain", "--format", "json"] + window
unit_time = timed(unit_command, through_library)
fallback_time = timed(unit_command, through_journalctl)
journalctl = ["journalctl", "--directory", journal, "--unit", unit, "--reverse", "--no-pager", "--quiet"]
export_time = timed(journalctl + ["--output=export", "--output-fields=MESSAGE"])
cat_time = timed(journalctl + ["--output=cat"])
json_time = timed(journalctl + ["--output=json", "--output-fields=MESSAGE"])
short_time = timed(journalctl + ["--output=short-iso-precise"])
peak_kb = own_peak(unit_command, through_library)
fallback_peak_kb = own_peak(unit_command, through_journalctl)
print(f"text: {size:.0f} MiB in a file and in {journal_size:.0f} MiB of journal files")
print(f"explain FILE                   : {file_time:.2f} s")
print(f"explain --unit, sd-journal API          : {unit_time:.2f} s")
print(f"ratio unit/file, sd-journal API: {unit_time / file_time:.2f} (goal: at most 1.0)")
print(f"explain --unit, journalctl (the fallback): {fallback_time:.2f} s")
print(f"ratio unit/file, journalctl: {fallback_time / file_time:.2f}")
print(f"journalctl alone, export (what explain --unit reads): {export_time:.2f} s")
print(f"journalctl alone, cat (no times, not enough)        : {cat_time:.2f} s")
print(f"journalctl alone, json                              : {json_time:.2f} s")
print(f"journalctl alone, short-iso-precise (host, identifier and indents to undo): {short_time:.2f} s")
print(f"explain --unit through journalctl, beyond journalctl export: {fallback_time - export_time:+.2f} s")
print(f"explain --unit peak memory (the doctor's own): sd-journal API {peak_kb / 1024:.0f} MiB "
      f"(journal files mapped in), journalctl {fallback_peak_kb / 1024:.0f} MiB")
