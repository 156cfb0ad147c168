"""What every process stands on: settings, the database, the Temporal client and its
payload codec, logs, metrics and tracing. Imports the domain below it, never the
service layer, a front end or the runtime (docs/ARCHITECTURE.md)."""
