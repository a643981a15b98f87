"""Using a trained generator: load it, export it, synthesize with it."""
