"""Sub-commands of ``hwsim``: one module each, with ``register(subparsers)``."""
