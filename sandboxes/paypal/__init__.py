"""The local PayPal Payouts sandbox (see `app` for what it does and its control API)."""
from sandboxes.paypal.app import PayPalSandbox, SandboxConfig, SandboxServer, load_document, serve

__all__ = ["PayPalSandbox", "SandboxConfig", "SandboxServer", "load_document", "serve"]
