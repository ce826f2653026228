"""``python -m sandboxes.paypal``: the sandbox as a process (see `server.main`)."""
from sandboxes.paypal.server import main

main()
