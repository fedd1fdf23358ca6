"""credit-bot: move SMS Partner credit from Slack, with a human approval."""
