"""Training: one LightningModule per method, shared callbacks."""
