"""The approval flow without Slack: parse a command, apply the policy, move the money."""
