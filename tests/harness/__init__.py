"""Test harness: real Synapse processes from rendered bundles, real services, real clients."""
