"""Celery task definitions, one module per verb; each is a thin shell over ``workers``."""
