"""The FastAPI app: submission, polling, admin and health endpoints."""
