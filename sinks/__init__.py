"""Event sinks beside the alert recorder: each takes the pipeline's events somewhere else
(MQTT for Home Assistant, ...). They import vision's types and nothing of bot/ or storage/:
what they need from the rest (the arm state) is handed in by ``firewatch.wiring``."""
