"""Running sweeps: storage, liveness and workers."""
