"""Pydantic request/response models, SQLModel tables, the error tree and Settings."""
