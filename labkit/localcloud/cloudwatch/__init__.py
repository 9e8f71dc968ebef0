"""CloudWatch: what Lambda and EventBridge write about themselves, logs and metrics, through the public API
(:mod:`.telemetry`); Logs on the lab clock (:mod:`.patches`)."""
