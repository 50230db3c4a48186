#!/usr/bin/python3
"""Runs one integration test module (they need root: network namespaces)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if os.geteuid() != 0:
    sys.exit("integration tests need root (they create network namespaces)")
suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
result = unittest.TextTestRunner(verbosity=2).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
