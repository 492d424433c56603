"""Latency from a write to its event, for benches/watch.sh.

    watch_latency.py EVENTS_FILE DIR N [--inotifywait]

Makes N changes, one at a time, to files in DIR (each a new content), and
after each waits until EVENTS_FILE has a line naming that file. With
--inotifywait, EVENTS_FILE is inotifywait's output (the kernel's floor);
otherwise tripseal's file sink. Prints p50, p99 and max in milliseconds.
"""
import os
import sys
import time

events_path, directory, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = "--inotifywait" in sys.argv
names = sorted(os.listdir(directory))[:50]
events = open(events_path, "rb")
events.seek(0, os.SEEK_END)
buffered = b""
latencies = []
for i in range(n):
    name = names[i % len(names)]
    path = os.path.join(directory, name)
    needle = (name if raw else path).encode()
    start = time.perf_counter()
    with open(path, "w") as f:
        f.write(f"change {i}\n")
    while True:
        chunk = events.read()
        if chunk:
            buffered += chunk
            lines = buffered.split(b"\n")
            buffered = lines.pop()
            if any(needle in line and (raw or b"fim-file-" in line) for line in lines):
                break
        else:
            time.sleep(0.0002)
    latencies.append((time.perf_counter() - start) * 1000)
    # Let the daemon go quiet between changes: each is a change of its own.
    time.sleep(0.01)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"{pick(0.5):.2f} {pick(0.99):.2f} {latencies[-1]:.2f}")
