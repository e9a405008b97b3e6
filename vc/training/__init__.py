"""Training: the StarGAN-VC2 objective and the training loop."""
