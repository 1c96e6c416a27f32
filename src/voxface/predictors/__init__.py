"""What trained methods are at inference, and importers of released checkpoints into those types."""
