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
    #: Where document and DICOM bytes live: empty (``<data_dir>/blobs``) or ``file:///path`` for
    #: the filesystem, ``s3://bucket[/prefix]?endpoint=URL`` for an S3-compatible object store
    #: (credentials from the usual AWS_* variables).
    blob_url: str = ""
    #: Cap on a request body held in memory (a SOAP envelope, MTOM root part), in bytes.
    max_envelope_bytes: int = 64 * 1024 * 1024
    #: repositoryUniqueId (OID) of this process's Document Repository.
    repository_unique_id: str = "1.3.6.1.4.1.21367.13.50.1"
    #: Where the repository sends ITI-42; empty means the registry in this same process.
    registry_url: str = ""
    #: Which actors ``xds serve`` mounts: "registry", "repository", "pix", "imaging" (comma-separated).
    actors: str = "registry,repository,pix,imaging"
    #: What ``xds serve`` listens with: "http" (the app), "mllp" (PIX), "dicom" (C-STORE SCP).
    listeners: str = "http,mllp,dicom"
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
    #: Imaging Document Source: port of the DICOM C-STORE SCP (intake); 0 turns it off.
    dicom_port: int = 11112
    #: AE title of the DICOM SCP, also the KOS RetrieveAETitle.
    dicom_ae_title: str = "XDS_IDS"
    #: repositoryUniqueId (OID) of the Imaging Document Source: the KOS RetrieveLocationUID, the
    #: RepositoryUniqueId of RAD-69 requests. Not the Document Repository's id, where the KOS lives.
    imaging_source_unique_id: str = "1.3.6.1.4.1.21367.13.80.1"
    #: Assigning authority (OID) of DICOM Patient IDs that carry none of their own; empty means
    #: the affinity domain (the departmental id is then the affinity-domain id).
    dicom_issuer: str = ""
    #: Where RAD-68 goes (a Document Repository's ITI-41 URL); empty: this server's repository.
    imaging_repository_url: str = ""
    #: Publish a study's manifest after this many seconds without new instances; 0: only on
    #: ``xds publish``.
    publish_quiet_seconds: float = 0.0
    #: DICOMweb base URL of an external archive (a PACS such as Orthanc) whose studies this
    #: Imaging Document Source publishes and serves; empty for none.
    dicomweb_archive_url: str = ""
    #: WADO-RS bases of other Imaging Document Sources, ``RetrieveLocationUID=URL`` comma
    #: separated: the FHIR ImagingStudy endpoint of KOS series that carry no Retrieve URL.
    imaging_endpoints: str = ""
    #: KOS DocumentEntry codes, ``code^^scheme^display``.
    imaging_class_code: str = "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1^Images"
    imaging_type_code: str = "18748-4^^2.16.840.1.113883.6.1^Diagnostic imaging study"
    imaging_practice_code: str = "394914008^^2.16.840.1.113883.6.96^Radiology"
    #: TLS (ATNA Secure Node): PEM server certificate chain and key; both set turns TLS on for
    #: the HTTP, MLLP and DICOM ports. ``tls_ca``: PEM bundle of the CAs peers must chain to.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    #: Client certificates on the TLS ports: "required" (mutual TLS), "optional" or "none".
    tls_client_auth: str = "required"
    #: "yes" also offers TLS_RSA_WITH_AES_128_CBC_SHA (ATNA legacy peers) beside ECDHE/AES-GCM.
    tls_legacy: str = "no"
    #: Client side (repository -> registry, notifications, KOS publish): the certificate and key
    #: this node presents, and the CA bundle it verifies servers with (default: ``tls_ca``).
    client_cert: str = ""
    client_key: str = ""
    client_ca: str = ""
    #: Audit Record Repository (ITI-20): syslog+tls://host:6514, syslog+tcp://, syslog+udp://;
    #: empty keeps the trail local only.
    audit_url: str = ""
    #: APP-NAME of the syslog header and AuditSourceID of every audit message.
    audit_source_id: str = "xds"
    #: XUA X-Service Provider on the SOAP endpoints: "required", "optional" or "off".
    xua: str = "off"
    #: PEM certificates of trusted identity providers, comma-separated.
    xua_idp_certs: str = ""
    #: The Audience an assertion must name (this service / affinity domain URI); empty: any.
    xua_audience: str = ""
    #: Allowed clock skew for NotBefore/NotOnOrAfter, in seconds.
    xua_skew_seconds: float = 60.0
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
        """Root of the default filesystem blob store (when ``blob_url`` is empty)."""
        return self.data_dir / "blobs"

    @property
    def patient_issuer(self) -> str:
        """Assigning authority of DICOM Patient IDs that name none (``dicom_issuer``)."""
        return self.dicom_issuer or self.affinity_domain

    @property
    def base_url(self) -> str:
        """This server's base URL (``public_url``, else http(s)://host:port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"

    @property
    def spool_dir(self) -> Path:
        """Where incoming MTOM attachments are spooled while a request is processed."""
        return self.data_dir / "tmp"


def _convert(type_name: object, raw: str) -> object:
    if type_name in (int, "int"):
        return int(raw)
    if type_name in (float, "float"):
        return float(raw)
    if type_name in (Path, "Path"):
        return Path(raw)
    return raw
