"""End to end: pingmon, the sandbox, Prometheus and Alertmanager as real processes on loopback."""
