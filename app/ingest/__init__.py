"""Queue ingest: billing input consumed from RabbitMQ, NATS JetStream and Redis streams
(consumers.py), taken as the bulk routes take it and acknowledged after commit (runner.py)."""
