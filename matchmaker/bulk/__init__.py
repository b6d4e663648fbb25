"""Bulk onboarding for hub cities: CSV export and all-or-nothing CSV import of needs and capabilities."""
