"""Times `bridge-doctor explain --format json LOG` against `grep -E` with the
knowledge base's symptoms (literals, or their regex where one is given), best
of three runs each after a warm-up; prints times, the ratio and peak memory."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

import yaml

doctor, log = sys.argv[1], sys.argv[2]
root = os.path.join(os.path.dirname(__file__), "..", "kb")
patterns = []
for path in sorted(glob.glob(os.path.join(root, "*.yaml"))):
    for entry in yaml.safe_load(open(path)) or []:
        for symptom in entry.get("symptoms", []):
            regex = symptom.get("regex")
            # grep -E has no \d; everything else in our regexes is ERE.
            patterns.append(regex.replace("\\d", "[0-9]") if regex else re.escape(symptom["literal"]).replace("\\ ", " "))
grep = ["grep", "-E", "-n"] + [a for p in patterns for a in ("-e", p)] + [log]
ours = [doctor, "explain", "--format", "json", log]


def timed(command):
    # Output goes to a real file: GNU grep stops at the first match when its
    # output is /dev/null, which would not be a comparison.
    times = []
    with tempfile.TemporaryFile() as sink:
        for _ in range(4):  # the first run warms the page cache and is dropped
            sink.seek(0)
            start = time.perf_counter()
            subprocess.run(command, stdout=sink, check=False)
            times.append(time.perf_counter() - start)
    return min(times[1:])


size = os.path.getsize(log) / 1048576
grep_time = timed(grep)
ours_time = timed(ours)
# Peak resident memory of one explain run, from GNU time.
measured = subprocess.run(["/usr/bin/time", "-f", "%M"] + ours, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
peak_kb = int(measured.stderr.strip().splitlines()[-1])
print(f"log: {size:.0f} MiB, {len(patterns)} symptom patterns")
print(f"grep -E : {grep_time:.2f} s")
print(f"explain : {ours_time:.2f} s")
print(f"ratio explain/grep: {ours_time / grep_time:.2f} (goal: at most 1.0)")
print(f"explain peak memory: {peak_kb / 1024:.1f} MiB (goal: under 50 MiB)")
