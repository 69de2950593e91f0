"""What a Python team would otherwise write: a task queue job that POSTs each webhook."""
