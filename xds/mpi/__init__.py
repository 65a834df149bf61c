"""The master patient index and PIX Manager: identity feeds (ITI-8, ITI-44), queries (ITI-9, ITI-45)."""
