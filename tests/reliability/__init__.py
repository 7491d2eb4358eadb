"""Reliability tests (issue 7): nothing leaks, nothing hangs, bad input is refused."""
