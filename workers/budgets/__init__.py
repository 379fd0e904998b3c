"""Hard budgets: limits on a tenant's or an API key's spend per day or month (docs/spend.md).

``periods`` places a moment in a budget's period (the tenant's time zone), ``estimate`` prices
a call before it is made, ``ledger`` reserves and settles in Redis with one Lua script each,
``rebuild`` sums the durable spend from the usage table, ``thresholds`` announces soft
thresholds once, ``applicable`` finds the budgets a job answers to, and ``manage`` creates,
changes and lists budgets for the API (and a CLI).
"""
