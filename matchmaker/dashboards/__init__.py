"""Programme dashboards per hub city and overall, with charts and CSV export."""
