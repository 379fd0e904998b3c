"""Signed webhook deliveries (Standard Webhooks): emitting, signing, sending, retries, SSRF guard.

See docs/webhooks.md. ``Outcomes.emit`` hands every event to ``emitter.WebhookEmitter``.
"""
