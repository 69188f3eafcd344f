"""Operations: liveness and readiness probes, the clock process's heartbeat, and the Prometheus scrape.

Layer: a face, beside the request cycle (`backend.web`), above every domain."""
