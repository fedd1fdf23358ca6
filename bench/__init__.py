"""Benchmark of issue 5: the app's ack latency against a bare Bolt app (`python -m bench.run`)."""
