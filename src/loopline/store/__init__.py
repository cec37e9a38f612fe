"""Metadata stores: the contract (``base``), its SQL implementation and the schema."""

from loopline.store.base import MetadataStore

__all__ = ["MetadataStore"]
