"""The shared core every other package depends on, downward: SATS types and the one BSATN codec (`sats`), the
RawModuleDef reader (`module_def`), SpacetimeDB's name rules (`names`) and the client protocol messages
(`protocol`).  It imports none of module_sdk, harness or client_sdk."""
