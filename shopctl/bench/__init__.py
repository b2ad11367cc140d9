"""The bench: a paced or flooding load through the gateway, its figures, the
bare pipeline it is compared with, and the report."""
