"""Reads a Redis Stream the fleet feed wrote, as a collector would see it.

    read_stream.py REDIS_URL KEY

Prints each entry's event as one JSON line, with "_type" (the entry's
`type` field) and "_routing_key" (that type as AMQP would route it, so that
the same assertions apply) added; then the stream's length on its own last
line.
"""
import json
import sys

import redis

url, key = sys.argv[1], sys.argv[2]
r = redis.Redis.from_url(url)
for _id, fields in r.xrange(key, "-", "+"):
    event = json.loads(fields[b"event"])
    event["_type"] = fields[b"type"].decode()
    event["_routing_key"] = event["_type"].replace("-", ".")
    print(json.dumps(event))
print(r.xlen(key))
