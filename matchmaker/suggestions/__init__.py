"""Matches on the pages: capabilities and experts for a need, needs for an expert, the posting assistant."""
