"""The Celery entry point: ``celery -A workers.app worker`` builds the app from Settings."""

from schemas.settings import load_settings
from workers.celery_app import create_celery
from workers.logging import configure_logging

configure_logging()
app = create_celery(load_settings())
