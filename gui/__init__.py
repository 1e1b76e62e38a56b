"""The desktop window (PyQt5): it calls the stage functions in workers and
shows their results; nothing here computes."""
