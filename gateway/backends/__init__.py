"""Backend drivers, one module each, behind the Protocol in base.py."""
