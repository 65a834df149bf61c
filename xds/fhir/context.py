"""What every FHIR interaction needs: the database, settings and the actors it reads through."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from xds.config import Settings
from xds.imaging.context import ImagingSource
from xds.mpi.index import PatientIndex
from xds.registry.context import Registry
from xds.repository.context import Repository
from xds.store.blobs import BlobStore, open_blob_store

__all__ = ["FhirContext", "FHIR_PATH", "TRANSACTIONS"]

#: Where the FHIR base is mounted.
FHIR_PATH = "/fhir"

#: The IHE transaction a request on each resource type is (MHD search and read, ITI-68
#: Retrieve Document, PDQm-style Patient read): audit EventTypeCodes and metric labels.
TRANSACTIONS = {"DocumentReference": "ITI-67", "List": "ITI-66", "Binary": "ITI-68",
                "Patient": "ITI-78"}


@dataclass(frozen=True, slots=True)
class FhirContext:
    """The facade's state; every interaction is a function of (FhirContext, request).

    The actors are those this process runs; the facade answers for what they hold (no
    ImagingStudy without the imaging actor, no ITI-65 without a repository).
    """

    engine: Engine
    settings: Settings
    registry: Registry
    repository: Repository | None = None
    index: PatientIndex | None = None
    imaging: ImagingSource | None = None
    #: The blob store of this process (None: the one of ``settings.blob_url``).
    blobs: BlobStore | None = None

    def blob_store(self) -> BlobStore:
        """Where documents and manifests live: the repository's store, else this process's."""
        if self.repository is not None:
            return self.repository.blobs
        return self.blobs if self.blobs is not None else open_blob_store(self.settings)

    @property
    def base_url(self) -> str:
        """The FHIR base URL (``fullUrl`` and link prefix), e.g. http://host:8080/fhir."""
        return self.settings.base_url + FHIR_PATH
