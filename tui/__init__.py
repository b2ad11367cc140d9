"""The Textual TUI of the shop sandbox (saga timelines, health, queues).

Built on shopctl's library; shopctl never imports this package."""
