"""Operations: liveness and readiness probes, and the clock process's heartbeat.

Layer: a face, beside the request cycle (`backend.web`), above every domain."""
