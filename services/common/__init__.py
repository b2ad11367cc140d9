"""The cross-cutting core every shop service stands on.

Settings, the CloudEvents envelope and event models, the database layer and
migrations, the transactional outbox and its relay, the inbox, the consumer
runner with retries and dead letters, health and metrics. No service is
imported from here.
"""
