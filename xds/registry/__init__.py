"""The Document Registry actor: ITI-42 Register Document Set-b and ITI-18 Registry Stored Query."""
