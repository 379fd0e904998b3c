"""Identifiers: a readable prefix and 24 random hex characters."""

import secrets


def new_id(prefix: str) -> str:
    """A new random id such as ``job_3f2a...``."""
    return f"{prefix}_{secrets.token_hex(12)}"
