"""`segstream deliver`: webhook destinations fed from the membership topic (docs/destinations.md).

settings   DeliverSettings (SEGSTREAM_DELIVER_*), the outbound policy included
signing    Standard Webhooks signatures (HMAC-SHA256, `v1,<base64>`) and secret references
sender     one batch to one URL: POST, retries with backoff and jitter, Retry-After
runner     one destination: its consumer group, batching, offsets committed after a 2xx
service    follows the destinations topic, runs one runner per destination, serves /metrics
metrics    the deliver process's Prometheus metrics
"""
