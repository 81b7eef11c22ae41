"""The `lanterne` command: the journalist's whole workflow, offline-capable.

Plain typed modules hold the logic (`identity_store`, `cleaning`, ...); the
`commands` package is a thin click layer over them, and `main` maps every
domain error to a message and an exit code in one place.
"""
