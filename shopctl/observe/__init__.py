"""The observation side: the timeline (a tap on the events exchange and the
history before it), trace, why, logs, outboxes and dead letters."""
