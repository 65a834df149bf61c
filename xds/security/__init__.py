"""ATNA Secure Node: TLS contexts and certificates (ITI-19), XUA assertions (ITI-40)."""
