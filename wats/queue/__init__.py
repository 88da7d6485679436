"""The durable report queue (pending/, failed/, completed/): see docs/pipeline.md, ``## Queue``."""

from wats.queue.item import QueueCounts, QueueItem, QueueMeta, QueueState, canonical_id
from wats.queue.store import ItemNotFound, ReportQueue

__all__ = [
    "ItemNotFound",
    "QueueCounts",
    "QueueItem",
    "QueueMeta",
    "QueueState",
    "ReportQueue",
    "canonical_id",
]
