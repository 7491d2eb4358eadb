"""The conformance checks: one module per namespace type, one function per guarantee.

Each module registers its checks with ``@check`` from
:mod:`nsprim.conformance.registry` when imported;
:func:`nsprim.conformance.registry.load_checks` imports them all. Modules whose
name starts with ``_`` are shared helpers and are not loaded as check groups:

* :mod:`._common`: errno names (``attempt``), namespace identity, and
  ``unshare``/``setns`` that confirm by identity that the namespace really is
  new (or really is the target);
* :mod:`._procs`: the processes under test that a helper forks or clones
  itself (pid namespace inits, their members), their pipes and reaping;
* :mod:`nsprim.conformance._libc`: the libc calls nsprim does not bind.

:mod:`.uts` is the model to copy; ``CONTRIBUTING.md`` walks through adding a
check. In short:

* the docstring's first line is the guarantee, in plain text (it is the
  title in every report); the rest says how it is tested and what the
  negative control changes;
* do the work in ``ctx.in_child``/``ctx.spawn_child`` helpers that unshare
  ``ctx.isolate(FLAGS)``; module-level helper functions return plain data and
  the check asserts with ``ctx.expect``/``ctx.expect_equal``;
* call ``handle.recv()`` after ``ctx.spawn_child`` before relying on the
  helper's state: ``spawn_child`` returns before the helper has run;
* declare what the environment must give in ``needs=Needs(...)``; raise
  ``Skip`` only for what a declaration can't express;
* import at module level (``--as-user`` drops privileges in-process and may
  no longer read the interpreter's library);
* the test is one parametrized test over the group, see
  ``tests/integration/test_checks_uts.py`` and ``conformance_helpers.py``.
"""
