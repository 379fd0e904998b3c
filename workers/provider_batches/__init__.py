"""The provider Batch API lane: batch-priority 24h jobs sent together at the batch price.

A worker that claims an eligible job parks it in an open provider batch (the chain's
``ProviderBatchParking``, workers/middleware/provider_batch.py); the beat task sends full or
old batches (``sending``), polls them and merges each result line back into its job row
(``merging``), settling it through the chain's after-call hooks (``settling``). The rows are
the truth (``batch_store``); the SDK calls are in ``client``, the pure line mapping in
``lines``. See docs/provider-batches.md.
"""
