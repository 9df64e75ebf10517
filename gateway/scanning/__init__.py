"""Malware scanners the core's Scanner protocol (gateway.core.scanning) runs
on: clamd. Below the core, beside the drivers; built by the composition root."""
