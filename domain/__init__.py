"""What both the worker's activities and the front ends need: the policy file and its
calendar, times and labels as people read them, mail rendering, case ids, the case
snapshot and what a caller may see of it, the read model's writer and the audit chain's
hash rule, retention's rules and the SLA badge.

Imports only `workflows`, `models` and third-party libraries (docs/ARCHITECTURE.md).
"""
