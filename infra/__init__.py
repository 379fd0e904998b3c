"""Deployment and operations: example config, migrations, the provider emulator."""
