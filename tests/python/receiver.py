"""A Celery event consumer built on the stock API, for tripseal's tests.

    receiver.py BROKER_URL OUT_FILE COUNT [TIMEOUT_SECONDS]

Connects with `app.events.Receiver` and a '*' handler, prints "ready" once
it has received a probe event of its own through the broker (on Redis the
subscription starts some time after the consumer does, and events published
before that are not for it), then
appends every event it receives to OUT_FILE as one JSON line, with the
message's routing key added as "_routing_key", until COUNT distinct events
(by `id`, as a consumer drops redeliveries) came.
Exits 3 if they do not come within TIMEOUT_SECONDS (default 60).
RECEIVER_TRANSPORT_OPTIONS, if set, is the app's broker_transport_options
as JSON; RECEIVER_DELAY_MS makes it a slow consumer (a pause per event).
RECEIVER_AUTH=KEY,CERT,STORE sets up Celery's message signing
(app.setup_security()) and accepts only events signed by a certificate of
STORE (accept=['auth']); its own probe is signed with KEY and CERT.
"""
import json
import os
import signal
import sys
import threading
import time

from celery import Celery
from celery.events.receiver import EventReceiver

url, out_path, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 60


def give_up(*_):
    sys.stderr.write(f"receiver.py: timed out with {received} of {want} events\n")
    sys.exit(3)


signal.signal(signal.SIGALRM, give_up)
signal.alarm(timeout)

received = 0
seen = set()
routing_keys = []
ready = threading.Event()
PROBE = "receiver-probe"
delay = float(os.environ.get("RECEIVER_DELAY_MS", "0")) / 1000


class Receiver(EventReceiver):
    # The routing key is not handed to handlers; keep it for the test.
    def _receive(self, body, message, *args, **kwargs):
        routing_keys.append(message.delivery_info.get("routing_key"))
        return super()._receive(body, message, *args, **kwargs)

    def on_consume_ready(self, *args, **kwargs):
        super().on_consume_ready(*args, **kwargs)
        threading.Thread(target=probe, daemon=True).start()


def probe():
    # Its own connection: kombu connections are not shared between threads.
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname="probe@receiver")
        while not ready.is_set():
            dispatcher.send(PROBE)
            time.sleep(0.05)


out = open(out_path, "a", encoding="utf-8")


def on_event(event):
    global received
    event = dict(event)
    routing_key = routing_keys.pop(0) if routing_keys else None
    if event.get("type") == PROBE:
        if not ready.is_set():
            ready.set()
            print("ready", flush=True)
        return
    event["_routing_key"] = routing_key
    out.write(json.dumps(event) + "\n")
    out.flush()
    if delay:
        time.sleep(delay)
    if event.get("id") not in seen:
        seen.add(event.get("id"))
        received += 1


app = Celery(broker=url)
if os.environ.get("RECEIVER_TRANSPORT_OPTIONS"):
    app.conf.broker_transport_options = json.loads(os.environ["RECEIVER_TRANSPORT_OPTIONS"])
accept = None
if os.environ.get("RECEIVER_AUTH"):
    # Celery's message signing, as its security guide sets it up: only
    # messages signed by a certificate of the store are accepted.
    key, cert, store = os.environ["RECEIVER_AUTH"].split(",")
    app.conf.update(
        security_key=key,
        security_certificate=cert,
        security_cert_store=store,
        task_serializer="auth",
        event_serializer="auth",
        accept_content=["auth"],
    )
    app.setup_security()
    accept = ["auth"]
with app.connection_for_read() as conn:
    recv = Receiver(conn, handlers={"*": on_event}, app=app, accept=accept)
    for _ in recv.consume(limit=None, timeout=None, wakeup=False):
        if received >= want:
            break
