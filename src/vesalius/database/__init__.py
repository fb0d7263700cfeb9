"""Database plumbing shared by the archive index and the record (engines, writer lock)."""
