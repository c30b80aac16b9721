"""The pension system (KZ/GOV/MLSPP/pension): State Centre for Pension Payments, Unified
Accumulative Pension Fund and State Social Insurance Fund in one adapter.

Modules: ``model`` (values, failures), ``rules`` (rule tables as data), ``calculation``
(pure amounts with their breakdown), ``schema`` / ``store`` (SQLite, no personal
details), ``decisions`` (write a decision and enqueue its event in one transaction),
``sources`` (population reads over the bus, recorded as the decision's sources),
``handlers`` (events received: births, deaths, disability conclusions), ``retirement``
(the retirement run), ``service`` / ``server`` (gRPC), ``seed`` and ``cli``.
"""
