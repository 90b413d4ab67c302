"""The writeback store: runs, submissions, quarantine, review items, decisions, ledger, audit."""

from .repo import (
    DecisionConflict,
    InvalidDecision,
    ItemNotFound,
    Store,
    StoreError,
    StoreNotConfigured,
    StoreSchemaOutdated,
    default_store_url,
)

__all__ = ["DecisionConflict", "InvalidDecision", "ItemNotFound", "Store", "StoreError", "StoreNotConfigured",
           "StoreSchemaOutdated", "default_store_url"]
