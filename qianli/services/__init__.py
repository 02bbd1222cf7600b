"""The service layer: small use-case functions. They take a Session (and the Runtime where they
need settings, Redis or the cipher), raise cases.errors, never commit (the caller's unit of work
does), and never import Flask."""
