"""Puts one raw message into a fleet feed's queue, as a compromised host or
a stray publisher could.

    publish_raw.py AMQP_URL QUEUE BODY
"""
import sys

from kombu import Connection

url, queue, body = sys.argv[1], sys.argv[2], sys.argv[3]
with Connection(url) as conn:
    producer = conn.Producer()
    producer.publish(
        body.encode(),
        exchange="",
        routing_key=queue,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
    )
