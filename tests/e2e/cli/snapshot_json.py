"""Reading the snapshot JSON that `memscope run --json` writes (the engine's
schema, docs/snapshot-json.md), for the CLI end-to-end tests.

Kept apart from the checks so a schema change is fixed in one place.
"""
import json

SUMMARY_FIELDS = ("total_allocations", "total_deallocations", "active_allocations",
                  "total_allocated", "total_deallocated", "current_memory", "peak_memory",
                  "unmatched_deallocations", "dropped_events")
THREAD_FIELDS = ("allocations", "deallocations", "allocated_bytes", "released_bytes",
                 "current_memory", "live_blocks", "peak_memory")


def load(path):
    with open(path) as f:
        return json.load(f)


def summary(doc):
    return doc["summary"]


def threads(doc):
    """Per-thread objects, each with at least 'tid' and THREAD_FIELDS."""
    return doc["threads"]


def blocks(doc):
    """Live blocks as dicts with 'address', 'size', 'thread', 'label_name', 'label_type'."""
    out = []
    for b in doc.get("blocks", doc.get("allocations", [])):
        label = b.get("label") or {}
        out.append({
            "address": b.get("address"),
            "size": b["size"],
            "thread": b.get("thread"),
            "label_name": b.get("label_name", label.get("name") if isinstance(label, dict) else None),
            "label_type": b.get("label_type", label.get("type") if isinstance(label, dict) else None),
        })
    return out


def pid(doc):
    """The recorded process's id, when the document says."""
    for key in ("pid", "process_id"):
        if key in doc:
            return doc[key]
        if key in doc.get("store", {}):
            return doc["store"][key]
    return None
