"""The Celery app and the machinery tasks use: providers, the policy chain, the job store."""
