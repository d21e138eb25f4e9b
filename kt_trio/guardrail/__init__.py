"""The `external-guardrail` policy: a model you run yourself behind HTTP (DESIGN.md "Guardrail
hook"). `client` speaks to the service; `edge` decides what it judges at the session and HTTP
edges. I/O, so it lives here and not in the pure `kt_trio.policies`."""
