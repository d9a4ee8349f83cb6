"""Adapters of the federation: wire, transport, sidecar, Replica client, credentials,
discovery. They do I/O; the core at the package root does none."""
