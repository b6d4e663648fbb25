"""Review pages."""
