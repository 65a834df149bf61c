"""ATNA audit trail (ITI-20): what each transaction did, as DICOM audit messages, kept in a
durable outbox and shipped to the Audit Record Repository over syslog."""
