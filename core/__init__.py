"""Shared plumbing for every stage: image I/O, working-directory layout,
progress and cancel protocol. No Qt and no TensorFlow here."""
