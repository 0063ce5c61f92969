"""Reading the snapshot JSON that `memscope run --json` writes (the engine's
schema memscope-snapshot/1, docs/snapshot-json.md), for the CLI end-to-end tests.

Kept apart from the checks so a schema change is fixed in one place.
"""
import json

SCHEMA = "memscope-snapshot/1"

SUMMARY_FIELDS = ("total_allocations", "total_deallocations", "active_allocations",
                  "total_allocated", "total_deallocated", "current_memory", "peak_memory",
                  "unmatched_deallocations", "dropped_events")
THREAD_FIELDS = ("allocations", "deallocations", "allocated_bytes", "released_bytes",
                 "current_memory", "live_blocks", "peak_memory")


def load(path):
    """Loads a snapshot document and checks its schema name."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    return doc


def summary(doc):
    return doc["summary"]


def threads(doc):
    """Per-thread objects, each with 'thread', 'tid' and THREAD_FIELDS."""
    return doc["threads"]


def blocks(doc):
    """Live blocks as dicts with 'address' (int), 'size', 'thread', 'label_name', 'label_type'."""
    out = []
    for b in doc["live_blocks"]:
        label = b.get("label") or {}
        out.append({
            "address": int(b["address"], 16),
            "size": b["size"],
            "thread": b["thread"],
            "label_name": label.get("name"),
            "label_type": label.get("type"),
        })
    return out


def pid(doc):
    """The recorded process's id."""
    return doc["process"]["pid"]
