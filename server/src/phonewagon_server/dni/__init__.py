"""Website visits: dynamic number insertion and the attribution of calls (docs/dni.md)."""
