"""The whole label-free loop run as one action: pipeline and self-training rounds."""
