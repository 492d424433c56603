"""The reference for benches/events.sh: Celery's own EventDispatcher sending
N events of the size tripseal's are, to the same broker.

    celery_dispatch.py BROKER_URL N

Prints the seconds it took. Celery publishes events without publisher
confirms and keeps no outbox, so this is the cost of the wire alone.
"""
import sys
import time

from celery import Celery

url, n = sys.argv[1], int(sys.argv[2])
app = Celery(broker=url)
fields = {
    "path": "/srv/app/tasks/module_00000.py",
    "rule": "task-modules",
    "severity": "high",
    "file_type": "file",
    "changes": {
        "hash": {"old": "0" * 64, "new": "f" * 64},
        "size": {"old": 100, "new": 101},
    },
    "baseline": {"digest": "0123456789abcdef", "generation": 1},
}
with app.connection_for_write() as conn:
    dispatcher = app.events.Dispatcher(conn, hostname="fim@bench")
    start = time.perf_counter()
    for i in range(n):
        dispatcher.send("fim-file-modified", id=str(i), **fields)
    dispatcher.flush()
    print(f"{time.perf_counter() - start:.4f}")
