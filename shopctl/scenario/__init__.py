"""Scenario files: steps that drive and break the stack, expectations on each
order's saga timeline, invariants checked after every scenario."""
