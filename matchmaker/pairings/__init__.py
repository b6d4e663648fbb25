"""Pairings: a need docked with a capability or an expert, from suggestion to outcome."""
