"""Deployable graphs (see langgraph.json)."""
