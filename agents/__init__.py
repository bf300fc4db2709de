"""Laptop side: the Ray actor that owns a node's cores and runs shards, model receiving, `join`."""
