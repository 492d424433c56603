"""Takes the messages from a durable queue, as a collector would.

    drain_queue.py AMQP_URL QUEUE WANT [delete|keep]

Prints each message's event as one JSON line, with "_routing_key",
"_delivery_mode" and "_properties" from the message added; reads until WANT messages came
(waiting up to 60 s), or, with WANT 0, until the queue is empty. Deletes
the queue afterwards so that a later run starts clean, unless told "keep".
"""
import json
import sys
import time

from kombu import Connection

url, queue, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
keep = len(sys.argv) > 4 and sys.argv[4] == "keep"
got = 0
deadline = time.monotonic() + 60
with Connection(url) as conn:
    channel = conn.default_channel
    while True:
        message = channel.basic_get(queue=queue, no_ack=True)
        if message is None:
            if want == 0 or got >= want:
                break
            if time.monotonic() > deadline:
                sys.exit(f"drain_queue.py: {got} of {want} messages in {queue}")
            time.sleep(0.1)
            continue
        event = json.loads(message.body)
        event["_routing_key"] = message.delivery_info["routing_key"]
        event["_delivery_mode"] = message.properties.get("delivery_mode")
        event["_properties"] = {
            "content_type": message.properties.get("content_type"),
            "content_encoding": message.properties.get("content_encoding"),
            "priority": message.properties.get("priority"),
            "headers": message.headers,
        }
        print(json.dumps(event))
        got += 1
        if want and got >= want:
            break
    if not keep:
        channel.queue_delete(queue)
