"""billhook: the webhook notification hub for usage-based billing."""

__version__ = "0.1.0"
