"""Test helpers shared by worker, supervisor and CLI tests (real sockets, real processes)."""
