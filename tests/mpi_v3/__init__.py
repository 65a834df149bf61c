"""Tests of the PIX Manager over HL7 v3 SOAP: ITI-44 feeds, ITI-45 queries, ITI-46 notifications."""
