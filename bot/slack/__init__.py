"""Everything Slack: Bolt wiring, listeners, Block Kit builders, card I/O."""
