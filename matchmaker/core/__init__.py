"""Cross-cutting pieces: enums, time, audit trail, access control, errors."""
