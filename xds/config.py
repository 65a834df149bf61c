"""Settings of every actor: one dataclass, filled from CLI options and ``XDS_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ["Settings", "WSDL_DIR"]

#: The official WSDLs and schemas the endpoints serve (copied from shared/schemas).
WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"


@dataclass(slots=True, kw_only=True)
class Settings:
    """Configuration of one ``xds`` process.

    Every field may be set by an environment variable named ``XDS_`` + the field name in upper
    case (``XDS_DATABASE_URL``); explicit arguments win over the environment.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("xds-data")
    #: SQLAlchemy URL; empty means SQLite at ``<data_dir>/registry.sqlite``.
    database_url: str = ""
    #: Assigning authority (OID) of the affinity domain's patient ids.
    affinity_domain: str = "1.3.6.1.4.1.21367.13.20.1000"
    #: homeCommunityId of this community (urn:oid:...); empty for none.
    home_community_id: str = ""
    #: A stored query whose result would exceed this many objects answers XDSTooManyResults.
    max_query_results: int = 10_000
    #: Cap on a request body held in memory (a SOAP envelope, MTOM root part), in bytes.
    max_envelope_bytes: int = 64 * 1024 * 1024
    #: repositoryUniqueId (OID) of this process's Document Repository.
    repository_unique_id: str = "1.3.6.1.4.1.21367.13.50.1"
    #: Where the repository sends ITI-42; empty means the registry in this same process.
    registry_url: str = ""
    #: Which actors ``xds serve`` mounts: "registry", "repository", "pix" (comma-separated).
    actors: str = "registry,repository,pix"
    #: MLLP port of the PIX Manager (ITI-8 feed, ITI-9 query); 0 turns MLLP off.
    mllp_port: int = 2575
    #: Assigning authorities (OIDs, comma-separated) the PIX Manager accepts; empty: any.
    pix_domains: str = ""
    #: "yes": a link group without an affinity-domain id gets one assigned; "no": only feeds assign.
    pix_assign_ids: str = "yes"
    #: "off" or "demographics": link a new identifier to the one person whose normalised family
    #: and given name, birth date and sex are equal (never on ambiguity).
    pix_match: str = "off"
    #: HL7 v3 device id (OID) of the PIX Manager: sender of its messages, custodian of answers.
    pix_device_id: str = "1.3.6.1.4.1.21367.13.60.1"
    #: PIX Consumers to notify (ITI-10 ``mllp://host:port``, ITI-46 ``http(s)://...``), comma-separated.
    pix_subscribers: str = ""
    #: Public base URL of this server, for WSDL addresses (default: taken from the request).
    public_url: str = ""
    log_level: str = "info"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``XDS_*`` variables, then ``overrides`` (``None`` values are skipped)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get("XDS_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]

    @property
    def effective_database_url(self) -> str:
        """The database URL, SQLite in the data directory when none is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.sqlite').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """Root of the content-addressed document store (filesystem backend)."""
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        """Where incoming MTOM attachments are spooled while a request is processed."""
        return self.data_dir / "tmp"


def _convert(type_name: object, raw: str) -> object:
    if type_name in (int, "int"):
        return int(raw)
    if type_name in (Path, "Path"):
        return Path(raw)
    return raw
