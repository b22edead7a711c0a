"""One module per kiosk screen, each with its kv rule in the ``.kv`` file beside it."""
