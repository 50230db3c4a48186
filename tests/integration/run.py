#!/usr/bin/python3
"""Runs one integration test module (they need root: network namespaces)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402


class Result(unittest.TextTestResult):
    """Tells the labs that something failed, so they print their logs."""

    def addFailure(self, test, err):
        lab.FAILED = True
        super().addFailure(test, err)

    def addError(self, test, err):
        lab.FAILED = True
        super().addError(test, err)


if os.geteuid() != 0:
    sys.exit("integration tests need root (they create network namespaces)")
suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
result = unittest.TextTestRunner(verbosity=2, resultclass=Result).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
