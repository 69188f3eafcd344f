"""Identity: staff accounts, device sessions (opaque bearer tokens), sign-in throttling, and the
declarative access rules (`backend.auth.access`) every endpoint uses."""
