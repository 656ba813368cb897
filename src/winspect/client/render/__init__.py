"""Renderers: protobuf results to text tables, wide tables, JSON lines and JSON documents."""
