"""The conformance checks: one module per namespace type, one function per guarantee.

Each module registers its checks with ``@check`` from
:mod:`nsprim.conformance.registry` when imported;
:func:`nsprim.conformance.registry.load_checks` imports them all. Modules whose
name starts with ``_`` are helpers and are not loaded as check groups.
:mod:`.uts` is the model to copy.
"""
