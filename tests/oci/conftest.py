"""Loads the local OCI API fixtures for the OCI tests."""

from tests.ociapi.fixtures import oci_test_config, ociapi

__all__ = ["oci_test_config", "ociapi"]
