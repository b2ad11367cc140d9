"""The runtimes that run the stack: local processes and docker containers,
what they share (``base``) and the one selector (``select``)."""
