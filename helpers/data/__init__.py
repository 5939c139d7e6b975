"""The book's data: the sample-data registry (:mod:`.registry`) and one loader module per public layout."""

from helpers.data.registry import datasets, fetch, verify

__all__ = ["datasets", "fetch", "verify"]
