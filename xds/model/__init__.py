"""The XDS domain model: metadata objects, HL7 values and error codes (no transport, no storage)."""
