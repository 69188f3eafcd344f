"""Operations: liveness and readiness probes, and the clock process's heartbeat."""
