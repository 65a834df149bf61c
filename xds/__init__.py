"""xds: IHE XDS.b / XDS-I.b actors (registry, repository, imaging, PIX, FHIR) in one package."""

__all__ = ["__version__"]

__version__ = "0.1.0"
