"""FHIR facade benchmark (not a test): ImagingStudy and DocumentReference search by patient next
to ITI-18 FindDocuments on the same data, in the same run, against a real ``xds serve``.

    python benchmarks/fhir.py                         # 10^5 DocumentEntries + 10^4 studies, SQLite
    python benchmarks/fhir.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Fills N DocumentEntries (10 per patient, as benchmarks/registry.py does) and one study (2 series
x 3 instances) in the instance index for each of S patients, then times over HTTP with one
keep-alive client: ITI-18 FindDocuments (SOAP), ITI-67 ``DocumentReference?patient=&status=``
and ``ImagingStudy?patient=`` for random patients. Prints p50/p99 and the ratio of each FHIR
search to ITI-18. Target: FHIR search within 1.5x of ITI-18.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
# This file is named fhir.py: its folder must not be on the path, or it would shadow the
# fhir.resources package the product imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))


def _registry_benchmark() -> object:
    spec = importlib.util.spec_from_file_location("registry_benchmark", HERE / "registry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench: object = _registry_benchmark()
DOCS_PER_PATIENT: int = _bench.DOCS_PER_PATIENT  # type: ignore[attr-defined]
_pct = _bench._pct  # type: ignore[attr-defined]
fill = _bench.fill  # type: ignore[attr-defined]
find_documents_http = _bench.find_documents_http  # type: ignore[attr-defined]
start_server = _bench.start_server  # type: ignore[attr-defined]

from tests import samples  # noqa: E402
from xds.config import Settings  # noqa: E402
from xds.fhir.ids import patient_resource_id  # noqa: E402
from xds.model.values import CX  # noqa: E402
from xds.mpi.model import PatientIdentifier  # noqa: E402
from xds.store.db import open_engine, write_transaction  # noqa: E402
from xds.store.tables import dicom_instance  # noqa: E402

SERIES, INSTANCES = 2, 3


def fill_studies(settings: Settings, pids: list[str], batch: int = 1000) -> None:
    """One study per patient in ``pids`` into the instance index (rows as C-STORE intake
    writes them; the bytes themselves are not needed to search)."""
    engine = open_engine(settings)
    for first in range(0, len(pids), batch):
        rows = []
        for pid in pids[first:first + batch]:
            cx = CX.parse(pid)
            assert cx is not None
            study = samples.new_oid()
            for s in range(SERIES):
                series = f"{study}.{s + 1}"
                for i in range(INSTANCES):
                    rows.append({
                        "sop_instance_uid": f"{series}.{i + 1}", "study_instance_uid": study,
                        "series_instance_uid": series, "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                        "transfer_syntax_uid": "1.2.840.10008.1.2.1", "instance_number": i + 1,
                        "patient_id": cx.id, "patient_issuer": cx.assigning_authority,
                        "patient_name": "BENCH^PATIENT", "accession_number": f"A{study[-8:]}",
                        "study_date": f"2024{random.randint(1, 12):02d}15", "study_time": "101500",
                        "study_description": "CT CHEST", "modality": "CT" if s == 0 else "SR",
                        "series_number": s + 1, "series_description": f"series {s + 1}",
                        "body_part": "CHEST", "sha256": "0" * 64, "size": 1000,
                        "received": "20240101000000"})
        with write_transaction(engine) as conn:
            conn.execute(dicom_instance.insert(), rows)
    engine.dispose()


def fhir_http(base: str, path: str, queries: list[dict[str, str]], expect: int) -> list[float]:
    """Latencies (ms) of FHIR searches ``path?query`` over one keep-alive connection."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    times = []
    for query in queries:
        t0 = time.perf_counter()
        conn.request("GET", f"/fhir/{path}?{urlencode(query)}",
                     headers={"Accept": "application/fhir+json"})
        response = conn.getresponse()
        content = response.read()
        times.append((time.perf_counter() - t0) * 1000)
        bundle = json.loads(content)
        assert response.status == 200 and bundle.get("total") == expect, content[:500]
    conn.close()
    return times


def _patient(pid: str) -> str:
    cx = CX.parse(pid)
    assert cx is not None
    return f"Patient/{patient_resource_id(PatientIdentifier(cx.assigning_authority, cx.id))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="xds serve --workers")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="xds-bench-fhir-")),
                        database_url=args.database_url)
    print(f"database: {settings.effective_database_url}")
    t0 = time.perf_counter()
    pids = fill(settings, args.entries)
    fill_studies(settings, pids[:args.studies])
    print(f"filled {args.entries:,} DocumentEntries and {min(args.studies, len(pids)):,} studies "
          f"in {time.perf_counter() - t0:.0f} s")
    proc, registry_url = start_server(settings, args.workers)
    base = registry_url.removesuffix("/xds/registry")
    try:
        with_studies = pids[:args.studies]
        docs = [{"patient": _patient(random.choice(pids)), "status": "current"}
                for _ in range(args.queries)]
        studies = [{"patient": _patient(random.choice(with_studies))} for _ in range(args.queries)]
        for _ in range(3):  # warm up every path
            find_documents_http(registry_url, pids, 20)
            fhir_http(base, "DocumentReference", docs[:20], DOCS_PER_PATIENT)
            fhir_http(base, "ImagingStudy", studies[:20], 1)
        figures = {
            "ITI-18 FindDocuments (SOAP)": find_documents_http(registry_url, pids, args.queries),
            "ITI-67 DocumentReference?patient": fhir_http(base, "DocumentReference", docs,
                                                          DOCS_PER_PATIENT),
            "ImagingStudy?patient": fhir_http(base, "ImagingStudy", studies, 1),
        }
    finally:
        proc.terminate()
        proc.wait(10)
    floor = _pct(figures["ITI-18 FindDocuments (SOAP)"], 50)
    print(f"{'search':<36}{'p50 ms':>9}{'p99 ms':>9}{'p50 / ITI-18':>14}")
    for name, times in figures.items():
        p50 = _pct(times, 50)
        print(f"{name:<36}{p50:>9.2f}{_pct(times, 99):>9.2f}{p50 / floor:>13.2f}x")
    print("target: each FHIR search p50 within 1.5x of ITI-18 FindDocuments")


if __name__ == "__main__":
    main()
