"""In-app inbox and email, sent only after the transaction that caused them commits."""
