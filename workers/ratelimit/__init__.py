"""Global rate limits: atomic sliding windows in Redis, shared by every worker process."""
