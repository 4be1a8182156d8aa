"""Shared pytest configuration: plugins every test directory may use."""

pytest_plugins = ["tests.testbed.fixtures"]
