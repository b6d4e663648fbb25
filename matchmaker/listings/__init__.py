"""Listings: enterprise technology needs and expert/institute capabilities, with their review workflow."""
