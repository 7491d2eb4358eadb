"""nsprim's conformance suite: one check per isolation guarantee, each with a negative control.

Installed as ``nsprim.conformance``. It uses only nsprim's public API.
"""
