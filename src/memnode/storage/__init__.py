"""What is on disk: the event log, Chroma, compaction, the data dir lock."""
