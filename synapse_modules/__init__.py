"""Chat500MG's Synapse modules: each organization's policy, enforced inside the homeserver.

Each policy is one module class, loaded by Synapse from ``homeserver.yaml`` ``modules:``.
Decisions live in pure functions (``*_rules.py``) so they can be tested without Synapse; the
module classes are the thin layer that wires them into Synapse callbacks.
"""
